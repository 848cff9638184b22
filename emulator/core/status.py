"""google.rpc.Status errors: raised by handlers, rendered by each front end the way Google renders them.

gRPC: status code, message and the packed Status in the `grpc-status-details-bin` trailer.
REST: `{"error": {"code": <http>, "message": ..., "status": "<CODE>", "details": [{"@type": ...}]}}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.api.error_reason_pb2 import ErrorReason
from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

# google.rpc.Code → HTTP status, per google/rpc/code.proto.
HTTP_STATUS = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}


class RpcError(Exception):
    """A google.rpc.Status a handler answers with instead of a response message."""

    def __init__(self, code: int, message: str, details: Sequence[Message] = ()) -> None:
        super().__init__(message)
        if code not in HTTP_STATUS or code == code_pb2.OK:
            raise ValueError(f"not an error code: {code}")
        self.code = code
        self.message = message
        self.details = list(details)

    @classmethod
    def from_status(cls, status: status_pb2.Status) -> RpcError:
        return cls(status.code, status.message, list(status.details))

    @property
    def status_name(self) -> str:
        return code_pb2.Code.Name(self.code)

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def to_status(self) -> status_pb2.Status:
        status = status_pb2.Status(code=self.code, message=self.message)
        for detail in self.details:
            if isinstance(detail, any_pb2.Any):  # already packed (a status given in its JSON form)
                status.details.append(detail)
            else:
                status.details.add().Pack(detail)
        return status

    def to_json(self) -> dict[str, Any]:
        """The REST error body, details in the proto3 JSON mapping with their `@type`."""
        status = self.to_status()
        details = [json_format.MessageToDict(d, preserving_proto_field_name=False) for d in status.details]
        body: dict[str, Any] = {"code": self.http_status, "message": self.message, "status": self.status_name}
        if details:
            body["details"] = details
        return {"error": body}

    def __repr__(self) -> str:
        return f"RpcError({self.status_name}, {self.message!r})"


def status_from_json(doc: Mapping[str, Any]) -> status_pb2.Status:
    """A google.rpc.Status in its JSON form (as fault injection takes it). Raises ValueError naming the field."""
    if not isinstance(doc, Mapping):
        raise ValueError("status: expected an object with code, message and details")
    status = status_pb2.Status()
    try:
        json_format.ParseDict(dict(doc), status)
    except json_format.ParseError as exc:
        raise ValueError(f"status: {exc}") from None
    if status.code not in HTTP_STATUS or status.code == code_pb2.OK:
        raise ValueError(f"status.code: {status.code} is not a google.rpc.Code error code (1-16)")
    return status


# Builders for the detail messages Google attaches.


_ERROR_REASONS = frozenset(ErrorReason.keys())


def error_info(
    reason: str, domain: str, metadata: Mapping[str, str], own_reasons: frozenset[str] = frozenset()
) -> error_details_pb2.ErrorInfo:
    """An ErrorInfo; the reason is checked against the generated enum of google/api/error_reason.proto, so a typed
    reason Google does not have fails loudly instead of teaching the canary a wrong one. `own_reasons`: the reasons
    the calling service sends beyond that enum (each service names and cites its own)."""
    if reason not in _ERROR_REASONS | own_reasons:
        raise ValueError(f"{reason!r} is not a google.api.ErrorReason")
    return error_details_pb2.ErrorInfo(reason=reason, domain=domain, metadata=dict(metadata))


def help_link(description: str, url: str) -> error_details_pb2.Help:
    return error_details_pb2.Help(links=[error_details_pb2.Help.Link(description=description, url=url)])


def localized(message: str) -> error_details_pb2.LocalizedMessage:
    return error_details_pb2.LocalizedMessage(locale="en-US", message=message)


def precondition(kind: str, subject: str, description: str) -> error_details_pb2.PreconditionFailure:
    violation = error_details_pb2.PreconditionFailure.Violation(type=kind, subject=subject, description=description)
    return error_details_pb2.PreconditionFailure(violations=[violation])


def invalid_argument(message: str) -> RpcError:
    return RpcError(code_pb2.INVALID_ARGUMENT, message)


def not_found(message: str) -> RpcError:
    return RpcError(code_pb2.NOT_FOUND, message)
