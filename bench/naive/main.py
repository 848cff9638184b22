"""The naive reference canary: the same job as function/, written the way most people would write it.

Benchmarks only, never deployed. One target (the first of CANARY_TARGETS) probed with
`vertexai.generative_models.GenerativeModel`; the failure classified by its ErrorInfo reason; on a lasting failure
TestIamPermissions (and GetIamPolicy for a permission denial, as the real canary does) plus ListLogEntries through
`google.cloud.logging.Client`; the same four metrics in one CreateTimeSeries through `google.cloud.monitoring`; one
log line; the HTTP JSON answer. Every library is imported at the top, the clients are built on the first request
(global scope, reused while the instance lives): the pattern Cloud Functions samples teach.

Credentials are Application Default Credentials, as the real canary's. Against the local emulator two variables
point the clients at it (bench/ sets them; unset, the clients talk to Google):
    NAIVE_REST_ENDPOINT   http://127.0.0.1:P  vertexai (api_transport="rest") and logging (HTTP mode): the only
                                              public ways to give these two a plain-HTTP endpoint
    CANARY_EMULATOR_GRPC  127.0.0.1:P         monitoring and Resource Manager: a gRPC transport with local channel
                                              credentials (they carry the ADC token), as the real canary does
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
import functions_framework
import google.auth
import google.auth.exceptions
import grpc
import requests
import vertexai
from google.api_core import exceptions
from google.cloud import logging as cloud_logging
from google.cloud import monitoring, resourcemanager
from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport
from google.cloud.resourcemanager_v3.services.projects.transports import ProjectsGrpcTransport
from google.iam.v1 import policy_pb2
from vertexai.generative_models import GenerationConfig, GenerativeModel

PROMPT = "Reply with the single word OK."
MODEL, _, LOCATION = os.environ.get("CANARY_TARGETS", "gemini-2.5-flash-lite@us-central1").split(",")[0].partition("@")
PREFIX = "custom.googleapis.com/gemini_canary"
VERTEX = "aiplatform.googleapis.com"
PERMISSIONS = [
    "aiplatform.endpoints.predict",
    "logging.logEntries.list",
    "logging.privateLogEntries.list",
    "resourcemanager.projects.getIamPolicy",
    "monitoring.timeSeries.create",
]
CAUSES = {
    "IAM_PERMISSION_DENIED": "iam_permission_denied",
    "SERVICE_DISABLED": "api_disabled",
    "BILLING_DISABLED": "billing_disabled",
    "SECURITY_POLICY_VIOLATED": "vpc_sc",
    "CONSUMER_INVALID": "wrong_project",
    "RESOURCE_USAGE_RESTRICTION_VIOLATED": "org_policy",
    "RATE_LIMIT_EXCEEDED": "quota",
    "RESOURCE_QUOTA_EXCEEDED": "quota",  # google/api/error_reason.proto (RESOURCE_EXHAUSTED is a status, not a reason)
    "ACCESS_TOKEN_EXPIRED": "credentials",
    "CREDENTIALS_MISSING": "credentials",
}
BY_CODE = {401: "credentials", 404: "model_unavailable", 429: "quota", 503: "unavailable", 504: "deadline"}
NOTHING_TO_LEARN = {"ok", "credentials", "quota", "unavailable", "deadline"}  # as the real canary: no evidence

TASK_ID = uuid.uuid4().hex
_clients: dict[str, Any] = {}


def clients() -> dict[str, Any]:
    if not _clients:
        credentials, project = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        project = os.environ.get("CANARY_PROJECT") or project
        rest, grpc_host = os.environ.get("NAIVE_REST_ENDPOINT"), os.environ.get("CANARY_EMULATOR_GRPC")
        if rest:
            vertexai.init(
                project=project, location=LOCATION, credentials=credentials, api_endpoint=rest, api_transport="rest"
            )
            log_client = cloud_logging.Client(
                project=project, credentials=credentials, _use_grpc=False, client_options={"api_endpoint": rest}
            )
        else:
            vertexai.init(project=project, location=LOCATION, credentials=credentials)
            log_client = cloud_logging.Client(project=project, credentials=credentials)
        if grpc_host:
            local = grpc.local_channel_credentials()
            metric_client = monitoring.MetricServiceClient(
                transport=MetricServiceGrpcTransport(
                    host=grpc_host, credentials=credentials, ssl_channel_credentials=local
                )
            )
            project_client = resourcemanager.ProjectsClient(
                transport=ProjectsGrpcTransport(host=grpc_host, credentials=credentials, ssl_channel_credentials=local)
            )
        else:
            metric_client = monitoring.MetricServiceClient(credentials=credentials)
            project_client = resourcemanager.ProjectsClient(credentials=credentials)
        _clients.update(
            credentials=credentials,
            project=project,
            model=GenerativeModel(MODEL),
            logging=log_client,
            metrics=metric_client,
            projects=project_client,
            region=region(),
        )
    return _clients


def region() -> str:
    host = os.environ.get("GCE_METADATA_HOST", "metadata.google.internal")
    try:
        answer = requests.get(
            f"http://{host}/computeMetadata/v1/instance/region", headers={"Metadata-Flavor": "Google"}, timeout=1
        )
        return answer.text.rsplit("/", 1)[-1] if answer.ok else "global"
    except requests.RequestException:
        return "global"


def classify(error: Exception) -> str:
    if isinstance(error, google.auth.exceptions.GoogleAuthError):
        return "credentials"
    if isinstance(error, exceptions.GoogleAPICallError):
        if error.reason in CAUSES:
            return CAUSES[error.reason]
        if "Organization Policy constraint" in str(error.message):
            return "org_policy"
        return BY_CODE.get(error.code or 0, "unknown")
    return "unknown"


def audit_filters(c: dict[str, Any], cause: str, error: Any, data_read: bool, principal: str) -> list[str]:
    since = f'timestamp>="{(datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}"'
    logs = f"projects/{c['project']}/logs/cloudaudit.googleapis.com"
    member = f"serviceAccount:{principal}"
    found = []
    if cause == "iam_permission_denied" and data_read:
        found.append(
            f'logName="{logs}%2Fdata_access" AND {since} AND protoPayload.serviceName="{VERTEX}" AND '
            f'protoPayload.status.code=7 AND protoPayload.authenticationInfo.principalEmail="{principal}"'
        )
    if cause == "vpc_sc":
        uid = (error.metadata or {}).get("uid", "")
        found.append(
            f'logName="{logs}%2Fpolicy" AND {since} AND protoPayload.metadata.vpcServiceControlsUniqueId="{uid}"'
        )
    change = {
        "iam_permission_denied": f'(protoPayload.methodName="SetIamPolicy" AND '
        f'protoPayload.serviceData.policyDelta.bindingDeltas.member="{member}") OR '
        '(protoPayload.serviceName="iam.googleapis.com" AND protoPayload.methodName:"Policies")',
        # Service Usage v1 and v1beta1 both audit DisableService (docs/google-behaviour.md)
        "api_disabled": 'protoPayload.methodName:"ServiceUsage.DisableService"',
        "billing_disabled": 'protoPayload.serviceName="cloudbilling.googleapis.com"',
        # Organization Policy v2, and v1 audited by cloudresourcemanager.googleapis.com
        "org_policy": 'protoPayload.serviceName="orgpolicy.googleapis.com" OR protoPayload.methodName:"OrgPolicy"',
    }.get(cause)
    if change:
        found.append(f'logName="{logs}%2Factivity" AND {since} AND ({change})')
    return found


def evidence(c: dict[str, Any], cause: str, error: Any, principal: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    resource = f"projects/{c['project']}"
    try:
        held = c["projects"].test_iam_permissions(resource=resource, permissions=PERMISSIONS).permissions
        out["permissions_held"] = sorted(held)
        data_read = False
        if cause == "iam_permission_denied":
            policy = c["projects"].get_iam_policy(resource=resource)
            out["roles_held"] = sorted(b.role for b in policy.bindings if f"serviceAccount:{principal}" in b.members)
            data_read = any(
                a.service in (VERTEX, "allServices")
                and any(lc.log_type == policy_pb2.AuditLogConfig.LogType.DATA_READ for lc in a.audit_log_configs)
                for a in policy.audit_configs
            )
            out["data_access_logs_on"] = data_read
        out["audit_entries"] = []
        for query in audit_filters(c, cause, error, data_read, principal):
            entries = c["logging"].list_entries(
                resource_names=[resource], filter_=query, order_by=cloud_logging.DESCENDING, max_results=10
            )
            for entry in entries:
                payload = entry.payload or {}
                out["audit_entries"].append(
                    {
                        "log": entry.log_name.rsplit("%2F", 1)[-1],
                        "at": entry.timestamp.isoformat() if entry.timestamp else None,
                        "who": payload.get("authenticationInfo", {}).get("principalEmail"),
                        "method": payload.get("methodName"),
                    }
                )
    except exceptions.GoogleAPICallError as err:
        out["error"] = f"{type(err).__name__}: {err.message}"
    return out


def write_metrics(c: dict[str, Any], outcome: str, cause: str, latency_ms: float, permission: str) -> None:
    now = time.time()
    interval = monitoring.TimeInterval({"end_time": {"seconds": int(now), "nanos": int(now % 1 * 1e9)}})
    target = f"{MODEL}@{LOCATION}"

    def series(name: str, labels: dict[str, str], value: dict[str, Any]) -> Any:
        ts = monitoring.TimeSeries()
        ts.metric.type = f"{PREFIX}/{name}"
        ts.metric.labels.update(labels)
        ts.resource.type = "generic_task"
        ts.resource.labels.update(
            {
                "project_id": c["project"],
                "location": c["region"],
                "namespace": "gemini-canary",
                "job": "gemini-canary",
                "task_id": TASK_ID,
            }
        )
        ts.points = [monitoring.Point({"interval": interval, "value": value})]
        return ts

    ok = cause == "ok"
    c["metrics"].create_time_series(
        name=f"projects/{c['project']}",
        time_series=[
            series("runs", {"outcome": outcome}, {"int64_value": 1}),
            series("success", {"target": target}, {"int64_value": int(ok)}),
            series("latency", {"target": target, "cause": cause}, {"double_value": latency_ms}),
            series(
                "failures",
                {"target": target, "cause": cause, "permission": permission or "none", "remedy": "none"},
                {"int64_value": int(not ok)},
            ),
        ],
    )


@functions_framework.http
def canary(request: flask.Request) -> flask.Response:
    started = time.perf_counter()
    c = clients()
    result: dict[str, Any] = {"target": f"{MODEL}@{LOCATION}", "project": c["project"]}
    error: Any = None
    try:
        response = c["model"].generate_content(
            PROMPT, generation_config=GenerationConfig(max_output_tokens=1, temperature=0.0)
        )
        cause = "ok"
        result["finish_reason"] = response.candidates[0].finish_reason.name
    except Exception as err:  # noqa: BLE001 - every failure is classified
        error, cause = err, classify(err)
        result["error"] = {
            "type": type(err).__name__,
            "code": getattr(err, "code", None),
            "reason": getattr(err, "reason", None),
            "message": str(getattr(err, "message", err))[:500],
        }
    result["latency_ms"] = (time.perf_counter() - started) * 1000
    principal = getattr(c["credentials"], "service_account_email", None) or "unknown"
    result.update(cause=cause, principal=principal)
    permission = (getattr(error, "metadata", None) or {}).get("permission", "")
    if cause not in NOTHING_TO_LEARN:
        result["evidence"] = evidence(c, cause, error, principal)
    outcome = "healthy" if cause == "ok" else "failing"
    if cause != "credentials":  # as the real canary: Monitoring would refuse the same credentials
        try:
            write_metrics(c, outcome, cause, result["latency_ms"], permission)
            result["metrics"] = {"written": True}
        except exceptions.GoogleAPICallError as err:
            result["metrics"] = {"written": False, "error": f"{type(err).__name__}: {err.message}"}
    result["verdict"] = "healthy" if cause == "ok" else "failing"
    result["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    severity, word = ("INFO", "OK") if cause == "ok" else ("ERROR", "DENIED")
    print(json.dumps({"severity": severity, "message": f"gemini-canary {word}: {cause}", **result}))
    return flask.Response(json.dumps(result, default=str), 200 if cause == "ok" else 502, mimetype="application/json")
