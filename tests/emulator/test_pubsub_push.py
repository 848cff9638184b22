"""Pub/Sub: publishing (the emulator's own publishers and the Publish method), push subscriptions and Eventarc's
CloudEvents, delivered on the emulator's clock to a loopback receiver."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from emulator.core.status import RpcError
from emulator.server import Emulator
from emulator.services import pubsub
from tests.emulator.rest_support import rest
from tests.emulator.support import PROJECT

TOPIC = f"projects/{PROJECT}/topics/canary-trigger"


def _topic(emu: Emulator, name: str = TOPIC) -> None:
    status, body = rest(emu, "PUT", f"/v1/{name}", {})
    assert status == 200, body


def test_publish_returns_increasing_message_ids_and_refuses_what_pubsub_refuses(
    start_emulator: Callable[[str], Emulator],
) -> None:
    emu = start_emulator("deploy_ready")
    _topic(emu)
    first = pubsub.publish(emu.world, TOPIC, b"hello", {})
    second = pubsub.publish(emu.world, TOPIC, b"", {"kind": "alert"})
    assert first.isdigit()
    assert int(second) == int(first) + 1
    with pytest.raises(RpcError, match=r"Resource not found \(resource=nope\)"):
        pubsub.publish(emu.world, f"projects/{PROJECT}/topics/nope", b"x", {})
    with pytest.raises(RpcError, match="Invalid \\[topics\\] name"):
        pubsub.publish(emu.world, "topics/x", b"x", {})
    with pytest.raises(RpcError, match="must contain either non-empty data, or at least one attribute"):
        pubsub.publish(emu.world, TOPIC, b"", {})
    with pytest.raises(RpcError, match="reserved"):
        pubsub.publish(emu.world, TOPIC, b"x", {"googfoo": "1"})
