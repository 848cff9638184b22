"""Pub/Sub: publishing (the emulator's own publishers and the Publish method), push subscriptions and Eventarc's
CloudEvents, delivered on the emulator's clock to a loopback receiver."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator

import pytest

from devkit.receiver import Receiver, receiving
from emulator.core.clock import parse_rfc3339
from emulator.core.status import RpcError
from emulator.server import Emulator
from emulator.services import pubsub
from tests.emulator.rest_support import LOC, rest, scheduler_job
from tests.emulator.support import PROJECT, advance
from tests.shared import WORKLOAD

TOPIC = f"projects/{PROJECT}/topics/canary-trigger"
SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/canary-push"
SUB_ID = "eventarc-us-central1-canary-123-sub-456"  # the shape of Eventarc's subscription ids


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


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


def _push_subscription(emu: Emulator, receiver: Receiver, **extra: object) -> dict[str, object]:
    push = {"pushEndpoint": f"{receiver.url}/push", "oidcToken": {"serviceAccountEmail": WORKLOAD}}
    status, body = rest(emu, "PUT", f"/v1/{SUBSCRIPTION}", {"topic": TOPIC, "pushConfig": push, **extra})
    assert status == 200, body
    return dict(body)


def _publish(emu: Emulator, data: bytes, attributes: dict[str, str]) -> str:
    message = {"data": base64.b64encode(data).decode(), "attributes": attributes}
    status, body = rest(emu, "POST", f"/v1/{TOPIC}:publish", {"messages": [message]})
    assert status == 200, body
    [message_id] = body["messageIds"]
    return str(message_id)


def test_a_published_message_is_pushed_with_the_documented_body_and_an_oidc_token(
    start_emulator: Callable[[str], Emulator], receiver: Receiver
) -> None:
    emu = start_emulator("deploy_ready")
    _topic(emu)
    created = _push_subscription(emu, receiver)
    assert created["ackDeadlineSeconds"] == 10
    assert created["state"] == "ACTIVE"
    assert rest(emu, "GET", f"/v1/{SUBSCRIPTION}")[1] == created
    message_id = _publish(emu, b"hello", {"kind": "test"})
    advance(emu, 0)
    [got] = receiver.taken()
    assert (got.method, got.path) == ("POST", "/push")
    assert got.headers["content-type"] == "application/json"
    body = json.loads(got.body)
    assert body == {
        "message": {
            "attributes": {"kind": "test"},
            "data": base64.b64encode(b"hello").decode(),
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": "2026-11-26T09:00:00Z",
            "publish_time": "2026-11-26T09:00:00Z",
        },
        "subscription": SUBSCRIPTION,
    }
    claims = emu.world.signer.verify(got.headers["authorization"].removeprefix("Bearer "), {f"{receiver.url}/push"})
    assert claims["email"] == WORKLOAD
    advance(emu, 3600)
    assert len(receiver.taken()) == 1  # acknowledged: not delivered again


def test_a_nacked_push_is_redelivered_with_the_retry_policys_backoff(
    start_emulator: Callable[[str], Emulator], receiver: Receiver
) -> None:
    emu = start_emulator("deploy_ready")
    _topic(emu)
    _push_subscription(emu, receiver, retryPolicy={"minimumBackoff": "10s", "maximumBackoff": "15s"})
    receiver.statuses = [500, 503, 429]
    _publish(emu, b"x", {})
    advance(emu, 0)
    assert len(receiver.taken()) == 1
    advance(emu, 9)
    assert len(receiver.taken()) == 1
    advance(emu, 1)  # 10 s after the first
    assert len(receiver.taken()) == 2
    advance(emu, 15)  # 20 s doubled is capped at 15 s
    assert len(receiver.taken()) == 3
    advance(emu, 15)
    assert len(receiver.taken()) == 4  # answered 200: acknowledged
    advance(emu, 600)
    assert len(receiver.taken()) == 4


def test_an_eventarc_subscription_delivers_a_cloudevent_until_unsubscribed(
    start_emulator: Callable[[str], Emulator], receiver: Receiver
) -> None:
    emu = start_emulator("deploy_ready")
    _topic(emu)
    audience = "https://gemini-canary-abc-uc.a.run.app"
    name = pubsub.subscribe_push(
        emu.world,
        PROJECT,
        TOPIC,
        "eventarc-us-central1-canary-123-sub-456",
        f"{receiver.url}/",
        WORKLOAD,
        audience,
        True,
    )
    assert name == f"projects/{PROJECT}/subscriptions/eventarc-us-central1-canary-123-sub-456"
    message_id = pubsub.publish(emu.world, TOPIC, b"{}", {"origin": "test"})
    advance(emu, 0)
    [got] = receiver.taken()
    assert got.headers["ce-id"] == message_id
    assert got.headers["ce-source"] == f"//pubsub.googleapis.com/{TOPIC}"
    assert got.headers["ce-specversion"] == "1.0"
    assert got.headers["ce-type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert got.headers["ce-time"] == "2026-11-26T09:00:00Z"
    assert json.loads(got.body) == {
        "message": {
            "attributes": {"origin": "test"},
            "data": "e30=",
            "messageId": message_id,
            "publishTime": "2026-11-26T09:00:00Z",
        },
        "subscription": name,
    }
    assert (
        emu.world.signer.verify(got.headers["authorization"].removeprefix("Bearer "), {audience})["email"] == WORKLOAD
    )
    pubsub.unsubscribe(emu.world, PROJECT, name)
    pubsub.publish(emu.world, TOPIC, b"{}", {})
    advance(emu, 60)
    assert len(receiver.taken()) == 1
    with pytest.raises(RpcError, match="Resource not found"):
        pubsub.subscribe_push(
            emu.world, PROJECT, f"projects/{PROJECT}/topics/nope", "sub-1", receiver.url, "", "", True
        )


def test_subscription_requests_are_checked(start_emulator: Callable[[str], Emulator], receiver: Receiver) -> None:
    emu = start_emulator("deploy_ready")
    _topic(emu)
    bad_endpoint = {"topic": TOPIC, "pushConfig": {"pushEndpoint": "ftp://x"}}
    status, body = rest(emu, "PUT", f"/v1/{SUBSCRIPTION}", bad_endpoint)
    assert (status, body["error"]["message"]) == (400, "Invalid push endpoint given (endpoint=ftp://x).")
    no_topic = {"topic": f"projects/{PROJECT}/topics/nope"}
    status, body = rest(emu, "PUT", f"/v1/{SUBSCRIPTION}", no_topic)
    assert (status, body["error"]["message"]) == (404, "Resource not found (resource=nope).")
    _push_subscription(emu, receiver)
    assert rest(emu, "PUT", f"/v1/{SUBSCRIPTION}", {"topic": TOPIC})[0] == 409
    assert rest(emu, "DELETE", f"/v1/{SUBSCRIPTION}")[0] == 200
    assert rest(emu, "GET", f"/v1/{SUBSCRIPTION}")[0] == 404
    status, body = rest(emu, "POST", f"/v1/{TOPIC}:publish", {"messages": [{}]})
    assert status == 400
    assert "at least one attribute" in body["error"]["message"]


def test_a_pubsub_job_publishes_its_data_and_attributes(
    start_emulator: Callable[[str], Emulator], receiver: Receiver
) -> None:
    emu = start_emulator("deploy_ready")
    topic = f"projects/{PROJECT}/topics/canary"
    assert rest(emu, "PUT", f"/v1/{topic}", {})[0] == 200
    status, sub = rest(
        emu,
        "PUT",
        f"/v1/projects/{PROJECT}/subscriptions/canary-push",
        {"topic": topic, "pushConfig": {"pushEndpoint": f"{receiver.url}/push"}},
    )
    assert status == 200, sub
    job = scheduler_job(pubsubTarget={"topicName": topic, "data": "e30=", "attributes": {"origin": "scheduler"}})
    del job["httpTarget"], job["attemptDeadline"]
    status, created = rest(emu, "POST", f"/v1/{LOC}/jobs", job)
    assert status == 200, created
    advance(emu, (parse_rfc3339(created["scheduleTime"]) - emu.world.clock.now()).total_seconds())
    [push] = receiver.taken()
    body = json.loads(push.body)
    assert base64.b64decode(body["message"]["data"]) == b"{}"
    assert body["message"]["attributes"] == {"origin": "scheduler"}
    assert rest(emu, "GET", f"/v1/{created['name']}")[1]["status"] == {}
