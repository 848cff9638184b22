"""A google.iam.v1 Policy on the wire: the emulator's `iam.Policy` to and from the protobuf message, and its
proto3-JSON form (etag base64, as bytes are), the one form every IAM API returns and audit entries carry."""

from __future__ import annotations

from typing import Any

from google.iam.v1 import policy_pb2
from google.protobuf import json_format

from emulator.core import iam
from emulator.core.status import invalid_argument


def policy_to_pb(policy: iam.Policy) -> policy_pb2.Policy:
    out = policy_pb2.Policy(version=policy.version, etag=policy.etag)
    for b in policy.bindings:
        binding = out.bindings.add(role=b.role, members=b.members)
        if b.condition:
            binding.condition.expression = b.condition.get("expression", "")
            binding.condition.title = b.condition.get("title", "")
    for c in policy.audit_configs:
        config = out.audit_configs.add(service=c.service)
        for lc in c.audit_log_configs:
            config.audit_log_configs.add(
                log_type=policy_pb2.AuditLogConfig.LogType.Value(lc.log_type),
                exempted_members=lc.exempted_members,
            )
    return out


def policy_from_pb(pb: policy_pb2.Policy) -> iam.Policy:
    bindings = []
    for i, b in enumerate(pb.bindings):
        if not iam.known_role(b.role) and not b.role.startswith(("projects/", "organizations/")):
            raise invalid_argument(f"Role ({b.role}) does not exist in the resource's hierarchy.")
        for member in b.members:
            if not iam.MEMBER_SHAPE.match(member):
                raise invalid_argument(
                    f'Policy members must be of the form "<type>:<value>". (bindings[{i}]: {member!r})'
                )
        condition = (
            {"expression": b.condition.expression, "title": b.condition.title} if b.HasField("condition") else None
        )
        bindings.append(iam.Binding(b.role, list(b.members), condition))
    configs = []
    for c in pb.audit_configs:
        log_configs = []
        for lc in c.audit_log_configs:
            if lc.log_type == policy_pb2.AuditLogConfig.LogType.LOG_TYPE_UNSPECIFIED:
                raise invalid_argument(
                    f"auditConfigs[{c.service}]: logType must be DATA_READ, DATA_WRITE or ADMIN_READ"
                )
            log_configs.append(
                iam.AuditLogConfig(policy_pb2.AuditLogConfig.LogType.Name(lc.log_type), list(lc.exempted_members))
            )
        configs.append(iam.AuditConfig(c.service, log_configs))
    return iam.Policy(bindings=bindings, audit_configs=configs, version=pb.version or 1)


def policy_json(policy: iam.Policy) -> dict[str, Any]:
    """A resource's policy in proto3 JSON (etag base64, as bytes are), the form every IAM API returns."""
    return json_format.MessageToDict(policy_to_pb(policy))
