"""The gRPC front end: every emulated service on one loopback port.

The port uses gRPC *local* credentials (`grpc.local_server_credentials()`): the connection is plain TCP on
loopback, yet clients may attach call credentials, so the production client code path (ADC token on every call)
runs unchanged with `grpc.local_channel_credentials()` as the only difference. Insecure channels cannot carry
call credentials and therefore get the 401 `CREDENTIALS_MISSING` answer, as they would from Google.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent import futures
from typing import Any

import grpc
from grpc_status import rpc_status

from emulator.core.handlers import Call, Method, before_call, hang, run_handler
from emulator.core.status import RpcError
from emulator.core.world import World

# Bytes that cannot parse as any protobuf message: a field key followed by a truncated varint.
_MALFORMED = b"\x08\xff\xff\xff"


class _Malformed:
    """Marks a response the fault injector wants sent as garbage."""


def _bearer(metadata: Iterable[tuple[str, Any]]) -> tuple[str, str]:
    token, agent = "", ""
    for key, value in metadata:
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            token = value[len("Bearer ") :].strip()
        elif key in ("x-goog-api-client", "user-agent") and isinstance(value, str) and not agent:
            agent = value
    return token, agent


def _abort(context: grpc.ServicerContext, error: RpcError) -> None:
    context.abort_with_status(rpc_status.to_status(error.to_status()))


def _unary(world: World, method: Method) -> grpc.RpcMethodHandler:
    def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
        fault = before_call(world, method)
        if fault is not None:
            if fault.status is not None:
                _abort(context, RpcError.from_status(fault.status))
            if fault.close:
                # grpc-python gives a server no handle on the socket; this is the status a client sees when
                # the peer resets the connection mid-call.
                context.abort(grpc.StatusCode.UNAVAILABLE, "Socket closed")
            if fault.malformed:
                return _Malformed()
            hang(fault, context.time_remaining())
            if not context.is_active():
                return None
        token, agent = _bearer(context.invocation_metadata())
        call = Call(world=world, method=method, token=token, user_agent=agent, caller_ip=_ip(context.peer()))
        try:
            return run_handler(world, method, call, request)
        except RpcError as err:
            _abort(context, err)
            raise  # not reached: abort raises

    def serialize(message: Any) -> bytes:
        if isinstance(message, _Malformed):
            return _MALFORMED
        return method.dump_bytes(message)

    return grpc.unary_unary_rpc_method_handler(
        behaviour, request_deserializer=method.parse_bytes, response_serializer=serialize
    )


def _ip(peer: str) -> str:
    # "ipv4:127.0.0.1:46826" / "ipv6:[::1]:5000"
    kind, _, rest = peer.partition(":")
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return rest.rsplit(":", 1)[0] if rest else peer


class GrpcServer:
    def __init__(self, world: World, methods: Iterable[Method], host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="emu-grpc"))
        by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
        for method in methods:
            by_service.setdefault(method.service, {})[method.name] = _unary(world, method)
        self._server.add_generic_rpc_handlers(
            tuple(grpc.method_handlers_generic_handler(svc, handlers) for svc, handlers in by_service.items())
        )
        self.host = host
        self.port = self._server.add_secure_port(f"{host}:{port}", grpc.local_server_credentials())
        if self.port == 0:
            raise OSError(f"cannot bind the gRPC port on {host}:{port}")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float = 0.5) -> None:
        self._server.stop(grace).wait()
