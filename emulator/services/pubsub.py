"""Pub/Sub v1 (pubsub.googleapis.com): topics — create (PUT), get, list, patch, delete, what
`gcloud pubsub topics create/describe/delete` and the deploy tool's Pub/Sub mode use — Publish, and subscriptions
(create (PUT), get, list, delete) with push delivery on the emulator's clock. `publish(world, topic, data,
attributes)` is for the emulator's own publishers (Cloud Scheduler's Pub/Sub targets, Monitoring's Pub/Sub
notification channels); `subscribe_push` / `unsubscribe` for the functions service's Eventarc triggers.

Publish limits (docs/google-behaviour.md, "Pub/Sub push"): a message has data or at least one attribute; at most
100 attributes, a key of at most 256 bytes not starting with "goog", a value of at most 1024 bytes; 10 MB a message;
1,000 messages a Publish request.
Push (`tick`): each message published after a subscription was made is POSTed to its push endpoint as Pub/Sub's
push body (or, for an Eventarc subscription, as a CloudEvent in binary content mode: ce-id, ce-source, ce-type
google.cloud.pubsub.topic.v1.messagePublished, ce-specversion, ce-time, and the MessagePublishedData body), with an
OIDC token when the push config names an account; 102/200/201/202/204 acknowledge it, anything else is redelivered
after the retry policy's exponential backoff; a message older than the retention duration is dropped.

Texts: "Resource already exists in the project (resource=T)." (409), "Resource not found (resource=T)." (404) and
"User not authorized to perform this action." (403), as Pub/Sub answers.
Assumption: the 403 carries no details.
Assumption: message ids are decimal strings counting up per project from a random 16-digit start (Google's are
decimal strings of about that length and documents them only as unique within the topic).
Assumption: without a retry policy, a nacked push is retried after 100 ms, doubling up to 60 s (Pub/Sub's push
backoff bounds); dead-letter policies, filters, ordering, exactly-once and pull are not emulated.
Assumption: Eventarc's CloudEvent body carries messageId/publishTime in camelCase only, while a plain push body
carries both spellings, as Google's push example shows; Eventarc's subscriptions retry from 10 s to 600 s.
Assumption: a push config's OIDC account is not checked (Google checks that the subscription's creator may act as
it); the 400 texts for a bad push endpoint or ack deadline are this emulator's own.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from google.rpc import code_pb2

from emulator.core.clock import rfc3339
from emulator.core.handlers import Api, Call, Doc, Fields, HttpRule, JsonMethod, Service, json_method
from emulator.core.network import Outbound, Unreachable
from emulator.core.status import RpcError, invalid_argument, not_found
from emulator.core.world import Project, World
from emulator.services.kit import (
    admit,
    allowed_on,
    audited,
    duration_seconds,
    integer,
    listed,
    mask_paths,
    message,
    text,
)

API = "pubsub.googleapis.com"
PROTO = "google.pubsub.v1.Publisher"
_NAME = re.compile(r"^projects/([^/]+)/topics/([^/]+)\Z")
_TOPIC_ID = re.compile(r"^(?!goog)[A-Za-z][\w\-.~%+]{2,254}\Z")
TOPIC: Fields = {
    "name": None,
    "labels": None,
    "messageStoragePolicy": None,
    "kmsKeyName": None,
    "schemaSettings": None,
    "satisfiesPzs": None,
    "messageRetentionDuration": None,
    "state": None,
    "ingestionDataSourceSettings": None,
    "messageTransforms": None,
}


# Publish limits, from Pub/Sub's quotas and limits page (cloud.google.com/pubsub/quotas, "Resource limits").
MAX_MESSAGE_BYTES = 10_000_000  # a message (data plus attributes) is at most 10 MB
MAX_ATTRIBUTES = 100  # attributes a message
MAX_ATTRIBUTE_KEY_BYTES = 256
MAX_ATTRIBUTE_VALUE_BYTES = 1024
MAX_MESSAGES_PER_PUBLISH = 1000  # messages in one Publish request


@dataclass
class TopicStore:
    """Pub/Sub topics in one project, by resource name, and the counter its message ids come from."""

    topics: dict[Any, Any] = field(default_factory=dict)
    next_message_id: int = field(default_factory=lambda: 10**15 + secrets.randbelow(9 * 10**15))


def denied() -> RpcError:
    return RpcError(code_pb2.PERMISSION_DENIED, "User not authorized to perform this action.")


def _project(call: Call, ref: str, permission: str) -> Project:
    return admit(call, ref, API, permission, denied)


def _topic_name(name: str) -> tuple[str, str]:
    match = _NAME.match(name)
    if match is None or not _TOPIC_ID.match(match.group(2)):
        raise invalid_argument(f"Invalid [topics] name: ({name})")
    return match.group(1), match.group(2)


def _topic(call: Call, name: str, permission: str) -> tuple[Project, Doc]:
    ref, topic_id = _topic_name(name)
    project = _project(call, ref, permission)
    found = project.store(TopicStore).topics.get(f"projects/{project.project_id}/topics/{topic_id}")
    if found is None:
        raise not_found(f"Resource not found (resource={topic_id}).")
    return project, found


def _audit(call: Call, project: Project, name: str, permission: str, request: Doc, response: Doc | None) -> None:
    """A topic or subscription change's Admin Activity entry: methodName the v1 gRPC name (Pub/Sub audit logging,
    ADMIN_WRITE), on the pubsub_topic or pubsub_subscription monitored resource."""
    _, project_id, kind, resource_id = name.split("/")
    label = "topic_id" if kind == "topics" else "subscription_id"
    message_type = "Topic" if kind == "topics" else "Subscription"
    # CreateTopic and CreateSubscription take the Topic / Subscription itself as their request (pubsub.proto).
    verb = call.method.name
    request_type = f"{verb}Request" if verb.startswith(("Update", "Delete")) else message_type
    audited(
        call,
        project,
        resource=name,
        permission=permission,
        resource_type={
            "type": "pubsub_topic" if kind == "topics" else "pubsub_subscription",
            "labels": {"project_id": project_id, label: resource_id},
        },
        request={"@type": f"type.googleapis.com/google.pubsub.v1.{request_type}", **copy.deepcopy(request)},
        response={"@type": f"type.googleapis.com/google.pubsub.v1.{message_type}", **copy.deepcopy(response)}
        if response
        else None,
    )


def create_topic(call: Call, request: Doc) -> Doc:
    ref, topic_id = _topic_name(text(request, "name"))
    project = _project(call, ref, "pubsub.topics.create")
    name = f"projects/{project.project_id}/topics/{topic_id}"
    if name in project.store(TopicStore).topics:
        raise RpcError(code_pb2.ALREADY_EXISTS, f"Resource already exists in the project (resource={topic_id}).")
    topic = {k: v for k, v in request.items() if k != "state"}
    project.store(TopicStore).topics[name] = {**topic, "name": name}
    _audit(call, project, name, "pubsub.topics.create", request, project.store(TopicStore).topics[name])
    return copy.deepcopy(project.store(TopicStore).topics[name])


def get_topic(call: Call, request: Doc) -> Doc:
    return copy.deepcopy(_topic(call, text(request, "topic"), "pubsub.topics.get")[1])


def list_topics(call: Call, request: Doc) -> Doc:
    project = _project(call, text(request, "project").removeprefix("projects/"), "pubsub.topics.list")
    return listed(
        "topics", [copy.deepcopy(t) for _, t in sorted(project.store(TopicStore).topics.items())], request, 100, 1000
    )


def update_topic(call: Call, request: Doc) -> Doc:
    given = message(request, "topic")
    project, topic = _topic(call, text(given, "name"), "pubsub.topics.update")
    paths = mask_paths(request)
    if not paths:
        raise invalid_argument("The update_mask in the UpdateTopicRequest must be set.")
    for path in paths:
        if path not in TOPIC or path in ("name", "state"):
            raise invalid_argument(f"Invalid update_mask provided in the UpdateTopicRequest: {path}.")
        if path in given:
            topic[path] = copy.deepcopy(given[path])
        else:
            topic.pop(path, None)
    _audit(call, project, topic["name"], "pubsub.topics.update", request, topic)
    return copy.deepcopy(topic)


def delete_topic(call: Call, request: Doc) -> Doc:
    project, topic = _topic(call, text(request, "topic"), "pubsub.topics.delete")
    del project.store(TopicStore).topics[topic["name"]]
    for other in call.world.projects.values():  # its subscriptions stay, detached from any topic
        for sub in other.store(SubscriptionStore).subscriptions.values():
            if sub.get("topic") == topic["name"]:
                sub["topic"] = DELETED_TOPIC
    _audit(call, project, topic["name"], "pubsub.topics.delete", request, None)
    return {}


# Publishing ----------------------------------------------------------------------------------------------------


def check_message(data: bytes, attributes: dict[str, str]) -> None:
    """A message as Pub/Sub accepts it: data or attributes, attribute keys and values within the limits."""
    if not data and not attributes:
        # Pub/Sub's text for a message with neither (the InvalidArgument publishers report).
        raise invalid_argument(
            "One or more messages in the publish request is empty. Each message must contain either non-empty "
            "data, or at least one attribute."
        )
    if len(attributes) > MAX_ATTRIBUTES:
        raise invalid_argument(f"A message has {len(attributes)} attributes; at most {MAX_ATTRIBUTES} are allowed.")
    size = len(data)
    for key, value in attributes.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise invalid_argument("Message attributes must map strings to strings.")
        if not key or len(key.encode()) > MAX_ATTRIBUTE_KEY_BYTES:
            raise invalid_argument(f"An attribute key must be 1-{MAX_ATTRIBUTE_KEY_BYTES} bytes long.")
        if key.startswith("goog"):
            raise invalid_argument(f'Attribute key {key[:64]!r} must not start with "goog" (reserved).')
        if len(value.encode()) > MAX_ATTRIBUTE_VALUE_BYTES:
            raise invalid_argument(
                f"The value of attribute {key[:64]!r} is longer than {MAX_ATTRIBUTE_VALUE_BYTES} bytes."
            )
        size += len(key.encode()) + len(value.encode())
    if size > MAX_MESSAGE_BYTES:
        raise invalid_argument(f"A message is {size} bytes; at most {MAX_MESSAGE_BYTES} are allowed.")


def publish(world: World, topic_name: str, data: bytes, attributes: dict[str, str]) -> str:
    """Publish one message to `projects/P/topics/T` as the emulator's own publishers do (no caller checks: the
    caller has made them); returns the message id. An unknown project or topic is NOT_FOUND, a bad name or message
    INVALID_ARGUMENT, each naming what was wrong. Takes `world.lock` (re-entrant: callers may hold it)."""
    ref, topic_id = _topic_name(topic_name)
    if not isinstance(data, bytes):
        raise invalid_argument("Message data must be bytes.")
    check_message(data, dict(attributes))
    with world.lock:
        project = world.project(ref)
        if project is None:
            raise not_found(f"Resource not found (resource={topic_id}).")
        return _store_message(world, project, topic_id, data, dict(attributes))


def _store_message(world: World, project: Project, topic_id: str, data: bytes, attributes: dict[str, str]) -> str:
    store = project.store(TopicStore)
    if f"projects/{project.project_id}/topics/{topic_id}" not in store.topics:
        raise not_found(f"Resource not found (resource={topic_id}).")
    message_id = str(store.next_message_id)
    store.next_message_id += 1
    _fan_out(world, f"projects/{project.project_id}/topics/{topic_id}", message_id, data, attributes)
    return message_id


# Subscriptions and push delivery -------------------------------------------------------------------------------

SUBSCRIBER = "google.pubsub.v1.Subscriber"
_SUB_NAME = re.compile(r"^projects/([^/]+)/subscriptions/([^/]+)\Z")
DELETED_TOPIC = "_deleted-topic_"  # what a subscription's topic reads once its topic is deleted
DEFAULT_ACK_DEADLINE_S = 10  # Subscription.ack_deadline_seconds: 10 s when not given, 10-600 s allowed
DEFAULT_RETENTION = "604800s"  # Subscription.message_retention_duration: 7 days when not given
# A push endpoint acknowledges with one of these statuses; anything else (or no answer) is a negative
# acknowledgement (Pub/Sub "Push subscriptions": 102, 200, 201, 202, 204).
PUSH_SUCCESS = (102, 200, 201, 202, 204)
PUSH_USER_AGENT = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"
# Without a retry policy, a nacked push is redelivered under push backoff, 100 ms doubling to 60 s at most.
PUSH_BACKOFF_S = (0.1, 60.0)
# Eventarc's Pub/Sub trigger subscriptions retry with exponential backoff from 10 s to 600 s.
EVENTARC_RETRY = {"minimumBackoff": "10s", "maximumBackoff": "600s"}
MESSAGE_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"  # the CloudEvent type of a Pub/Sub message
MAX_PUSHES_PER_ROUND = 500
_TOKEN: Fields = {"serviceAccountEmail": None, "audience": None}
SUBSCRIPTION: Fields = {
    "name": None,
    "topic": None,
    "pushConfig": {
        "pushEndpoint": None,
        "attributes": None,
        "oidcToken": _TOKEN,
        "pubsubWrapper": None,
        "noWrapper": None,
    },
    "bigqueryConfig": None,
    "cloudStorageConfig": None,
    "ackDeadlineSeconds": None,
    "retainAckedMessages": None,
    "messageRetentionDuration": None,
    "labels": None,
    "enableMessageOrdering": None,
    "expirationPolicy": None,
    "filter": None,
    "deadLetterPolicy": None,
    "retryPolicy": {"minimumBackoff": None, "maximumBackoff": None},
    "detached": None,
    "enableExactlyOnceDelivery": None,
    "topicMessageRetentionDuration": None,
    "state": None,
    "analyticsHubSubscriptionInfo": None,
    "messageTransforms": None,
}


@dataclass
class Pending:
    """A message a subscription has not had acknowledged yet."""

    message_id: str
    data: bytes
    attributes: dict[str, str]
    publish_time: datetime
    due: datetime
    attempts: int = 0
    busy: bool = False


@dataclass
class SubscriptionStore:
    """Pub/Sub subscriptions in one project, by resource name; their unacknowledged messages; and which of them
    deliver as Eventarc does (CloudEvents in binary content mode)."""

    subscriptions: dict[str, Doc] = field(default_factory=dict)
    pending: dict[str, list[Pending]] = field(default_factory=dict)
    cloudevent: set[str] = field(default_factory=set)


def _sub_name(name: str) -> tuple[str, str]:
    match = _SUB_NAME.match(name)
    if match is None or not _TOPIC_ID.match(match.group(2)):
        raise invalid_argument(f"Invalid [subscriptions] name: ({name})")
    return match.group(1), match.group(2)


def _check_push(push: Doc) -> None:
    endpoint = text(push, "pushEndpoint")
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise invalid_argument(f"Invalid push endpoint given (endpoint={endpoint[:200]}).")
    token = message(push, "oidcToken")
    if token and not text(token, "serviceAccountEmail"):
        raise invalid_argument("A push config's oidc_token must name a service_account_email.")


def _new_subscription(world: World, project: Project, sub_id: str, request: Doc) -> Doc:
    """Store a subscription (the caller has checked who asks); the topic must exist in a known project."""
    topic_name = text(request, "topic")
    topic_ref, topic_id = _topic_name(topic_name)
    topic_project = world.project(topic_ref)
    if topic_project is None:
        raise not_found(f"Resource not found (resource={topic_id}).")
    full_topic = f"projects/{topic_project.project_id}/topics/{topic_id}"
    if full_topic not in topic_project.store(TopicStore).topics:
        raise not_found(f"Resource not found (resource={topic_id}).")
    name = f"projects/{project.project_id}/subscriptions/{sub_id}"
    store = project.store(SubscriptionStore)
    if name in store.subscriptions:
        raise RpcError(code_pb2.ALREADY_EXISTS, f"Resource already exists in the project (resource={sub_id}).")
    push = message(request, "pushConfig")
    _check_push(push)
    deadline = integer(request, "ackDeadlineSeconds", DEFAULT_ACK_DEADLINE_S)
    if not 10 <= deadline <= 600:
        raise invalid_argument(f"Invalid ack deadline given: {deadline}. The ack deadline must be 10-600 seconds.")
    retry = message(request, "retryPolicy")
    for key in ("minimumBackoff", "maximumBackoff"):
        if key in retry and not 0 <= duration_seconds(retry[key], f"retry_policy.{key}") <= 600:
            raise invalid_argument(f"retry_policy.{key} must be between 0 and 600 seconds.")
    duration_seconds(request.get("messageRetentionDuration", DEFAULT_RETENTION), "message_retention_duration")
    subscription = {
        **{k: copy.deepcopy(v) for k, v in request.items() if k not in ("state", "name", "topic")},
        "name": name,
        "topic": full_topic,
        "ackDeadlineSeconds": deadline,
        "messageRetentionDuration": request.get("messageRetentionDuration", DEFAULT_RETENTION),
        "state": "ACTIVE",
    }
    if not push:
        subscription.pop("pushConfig", None)
    store.subscriptions[name] = subscription
    store.pending[name] = []
    return copy.deepcopy(subscription)


def _subscription(call: Call, name: str, permission: str) -> tuple[Project, Doc]:
    ref, sub_id = _sub_name(name)
    project = _project(call, ref, permission)
    found = project.store(SubscriptionStore).subscriptions.get(f"projects/{project.project_id}/subscriptions/{sub_id}")
    if found is None:
        raise not_found(f"Resource not found (resource={sub_id}).")
    return project, found


def create_subscription(call: Call, request: Doc) -> Doc:
    ref, sub_id = _sub_name(text(request, "name"))
    project = _project(call, ref, "pubsub.subscriptions.create")
    topic_project = call.world.project(_topic_name(text(request, "topic"))[0])
    if topic_project is not None and not allowed_on(call, topic_project, "pubsub.topics.attachSubscription"):
        raise denied()
    created = _new_subscription(call.world, project, sub_id, request)
    _audit(call, project, created["name"], "pubsub.subscriptions.create", request, created)
    return created


def get_subscription(call: Call, request: Doc) -> Doc:
    return copy.deepcopy(_subscription(call, text(request, "subscription"), "pubsub.subscriptions.get")[1])


def list_subscriptions(call: Call, request: Doc) -> Doc:
    project = _project(call, text(request, "project").removeprefix("projects/"), "pubsub.subscriptions.list")
    subs = sorted(project.store(SubscriptionStore).subscriptions.items())
    return listed("subscriptions", [copy.deepcopy(s) for _, s in subs], request, 100, 1000)


def delete_subscription(call: Call, request: Doc) -> Doc:
    project, sub = _subscription(call, text(request, "subscription"), "pubsub.subscriptions.delete")
    _drop_subscription(project, sub["name"])
    _audit(call, project, sub["name"], "pubsub.subscriptions.delete", request, None)
    return {}


def _drop_subscription(project: Project, name: str) -> None:
    store = project.store(SubscriptionStore)
    store.subscriptions.pop(name, None)
    store.pending.pop(name, None)
    store.cloudevent.discard(name)


def publish_method(call: Call, request: Doc) -> Doc:
    """Publish: up to 1,000 messages, each checked as `publish` checks it; the ids in order."""
    topic_name = text(request, "topic")
    ref, topic_id = _topic_name(topic_name)
    project = _project(call, ref, "pubsub.topics.publish")
    if f"projects/{project.project_id}/topics/{topic_id}" not in project.store(TopicStore).topics:
        raise not_found(f"Resource not found (resource={topic_id}).")
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_argument("The request contains no messages.")
    if len(messages) > MAX_MESSAGES_PER_PUBLISH:
        raise invalid_argument(
            f"The value for message_count is too large. You passed {len(messages)} in the request, but the "
            f"maximum value is {MAX_MESSAGES_PER_PUBLISH}."
        )
    decoded: list[tuple[bytes, dict[str, str]]] = []
    for index, item in enumerate(messages):
        if not isinstance(item, dict):
            raise invalid_argument(f"Invalid value at 'messages[{index}]': expected an object.")
        try:
            data = base64.b64decode(str(item.get("data", "")), validate=True)
        except binascii.Error:
            raise invalid_argument(f"Invalid value at 'messages[{index}].data' (TYPE_BYTES)") from None
        attributes = message(item, "attributes")
        check_message(data, attributes)
        decoded.append((data, dict(attributes)))
    ids = [_store_message(call.world, project, topic_id, data, attributes) for data, attributes in decoded]
    return {"messageIds": ids}


def subscribe_push(
    world: World,
    project: str,
    topic_name: str,
    subscription_id: str,
    endpoint: str,
    oidc_email: str,
    audience: str,
    cloudevent: bool,
) -> str:
    """A push subscription for the emulator's own use (an Eventarc trigger of a deployed function): `endpoint`
    gets each message, with an OIDC token for `oidc_email` (audience `audience`, or the endpoint when empty), as
    Pub/Sub's push body or, with `cloudevent`, as Eventarc's CloudEvent. Returns the subscription's name; raises
    RpcError naming what was wrong (unknown project or topic, a bad name or endpoint, an existing subscription)."""
    with world.lock:
        found = world.project(project)
        if found is None:
            raise not_found(f"Resource not found (resource={project}).")
        _sub_name(f"projects/{found.project_id}/subscriptions/{subscription_id}")
        push: Doc = {"pushEndpoint": endpoint}
        if oidc_email:
            push["oidcToken"] = {"serviceAccountEmail": oidc_email, **({"audience": audience} if audience else {})}
        request: Doc = {"topic": topic_name, "pushConfig": push}
        if cloudevent:
            request["retryPolicy"] = dict(EVENTARC_RETRY)
        created = _new_subscription(world, found, subscription_id, request)
        if cloudevent:
            found.store(SubscriptionStore).cloudevent.add(created["name"])
        return str(created["name"])


def unsubscribe(world: World, project: str, subscription_name: str) -> None:
    """Delete a subscription `subscribe_push` made (nothing happens when it is already gone)."""
    with world.lock:
        found = world.project(project)
        if found is not None:
            _sub_name(subscription_name)
            _drop_subscription(found, subscription_name)


def _fan_out(world: World, topic: str, message_id: str, data: bytes, attributes: dict[str, str]) -> None:
    at = world.clock.now()
    for project in world.projects.values():
        store = project.store(SubscriptionStore)
        for name, sub in store.subscriptions.items():
            if sub.get("topic") == topic:
                store.pending[name].append(Pending(message_id, data, dict(attributes), at, at))


@dataclass
class Push:
    project_id: str
    subscription: str
    pending: Pending
    request: Outbound


def _wire_message(pending: Pending, both_spellings: bool) -> Doc:
    doc: Doc = {}
    if pending.attributes:
        doc["attributes"] = dict(pending.attributes)
    if pending.data:
        doc["data"] = base64.b64encode(pending.data).decode()
    doc["messageId"] = pending.message_id
    doc["publishTime"] = rfc3339(pending.publish_time)
    if both_spellings:  # the push body carries the ids in both spellings (Pub/Sub "Receive messages" example)
        doc["message_id"] = pending.message_id
        doc["publish_time"] = doc["publishTime"]
    return doc


def _push_request(world: World, sub: Doc, pending: Pending, cloudevent: bool) -> Outbound:
    push = sub["pushConfig"]
    endpoint = push["pushEndpoint"]
    body = {"message": _wire_message(pending, not cloudevent), "subscription": sub["name"]}
    headers = {"Content-Type": "application/json", "User-Agent": PUSH_USER_AGENT}
    if cloudevent:
        # Eventarc's binary content mode: the CloudEvent's attributes as ce- headers, MessagePublishedData as body.
        headers.update(
            {
                "ce-id": pending.message_id,
                "ce-source": f"//pubsub.googleapis.com/{sub['topic']}",
                "ce-specversion": "1.0",
                "ce-type": MESSAGE_PUBLISHED,
                "ce-time": rfc3339(pending.publish_time),
            }
        )
    token = push.get("oidcToken")
    if token:
        audience = token.get("audience") or endpoint
        headers["Authorization"] = f"Bearer {world.signer.id_token(token['serviceAccountEmail'], audience)}"
    timeout = float(sub.get("ackDeadlineSeconds", DEFAULT_ACK_DEADLINE_S))
    return Outbound("POST", endpoint, headers, json.dumps(body).encode(), timeout)


def _expired(sub: Doc, pending: Pending, now_: datetime) -> bool:
    retention = duration_seconds(sub.get("messageRetentionDuration", DEFAULT_RETENTION), "retention")
    return (now_ - pending.publish_time).total_seconds() > retention


def _next_push(world: World, now_: datetime) -> Push | None:
    best: tuple[datetime, Project, Doc, Pending] | None = None
    for project in world.projects.values():
        store = project.store(SubscriptionStore)
        for name, sub in store.subscriptions.items():
            if not text(message(sub, "pushConfig"), "pushEndpoint"):
                continue
            queue = store.pending.get(name, [])
            queue[:] = [p for p in queue if p.busy or not _expired(sub, p, now_)]
            for pending in queue:
                if not pending.busy and pending.due <= now_ and (best is None or pending.due < best[0]):
                    best = (pending.due, project, sub, pending)
    if best is None:
        return None
    _, project, sub, pending = best
    pending.busy = True
    cloudevent = sub["name"] in project.store(SubscriptionStore).cloudevent
    return Push(project.project_id, sub["name"], pending, _push_request(world, sub, pending, cloudevent))


def _push_backoff(sub: Doc, attempts: int) -> float:
    retry = message(sub, "retryPolicy")
    if retry:
        low = duration_seconds(retry.get("minimumBackoff", "10s"), "minimum_backoff")
        high = duration_seconds(retry.get("maximumBackoff", "600s"), "maximum_backoff")
    else:
        low, high = PUSH_BACKOFF_S
    return float(min(low * 2 ** max(attempts - 1, 0), high))


def _settle(world: World, push: Push, acked: bool) -> None:
    project = world.project(push.project_id)
    if project is None:
        return
    store = project.store(SubscriptionStore)
    sub = store.subscriptions.get(push.subscription)
    queue = store.pending.get(push.subscription, [])
    pending = push.pending
    pending.busy = False
    if sub is None or pending not in queue:
        return
    if acked:
        queue.remove(pending)
        return
    pending.attempts += 1
    pending.due = pending.due + timedelta(seconds=_push_backoff(sub, pending.attempts))


def tick(world: World, now_: datetime) -> None:
    """Push every message that is due by `now_` to its subscription's endpoint, each outside the lock."""
    for _ in range(MAX_PUSHES_PER_ROUND):
        with world.lock:
            push = _next_push(world, now_)
        if push is None:
            return
        try:
            acked = world.network.send(push.request).status in PUSH_SUCCESS
        except Unreachable:
            acked = False
        with world.lock:
            _settle(world, push, acked)


_TP = "projects/*/topics/*"
_SP = "projects/*/subscriptions/*"
METHODS: list[JsonMethod] = [
    json_method(PROTO, "CreateTopic", create_topic, API, TOPIC),
    json_method(PROTO, "GetTopic", get_topic, API, {"topic": None}),
    json_method(PROTO, "ListTopics", list_topics, API, {"project": None, "pageSize": None, "pageToken": None}),
    json_method(PROTO, "UpdateTopic", update_topic, API, {"topic": TOPIC, "updateMask": None}),
    json_method(PROTO, "DeleteTopic", delete_topic, API, {"topic": None}),
    json_method(PROTO, "Publish", publish_method, API, {"topic": None, "messages": None}),
    json_method(SUBSCRIBER, "CreateSubscription", create_subscription, API, SUBSCRIPTION),
    json_method(SUBSCRIBER, "GetSubscription", get_subscription, API, {"subscription": None}),
    json_method(
        SUBSCRIBER, "ListSubscriptions", list_subscriptions, API, {"project": None, "pageSize": None, "pageToken": None}
    ),
    json_method(SUBSCRIBER, "DeleteSubscription", delete_subscription, API, {"subscription": None}),
]

RULES: list[HttpRule] = [
    HttpRule("PUT", f"/v1/{{name={_TP}}}", f"{PROTO}.CreateTopic", "*"),
    HttpRule("GET", f"/v1/{{topic={_TP}}}", f"{PROTO}.GetTopic"),
    HttpRule("GET", "/v1/{project=projects/*}/topics", f"{PROTO}.ListTopics"),
    HttpRule("PATCH", f"/v1/{{topic.name={_TP}}}", f"{PROTO}.UpdateTopic", "*"),
    HttpRule("DELETE", f"/v1/{{topic={_TP}}}", f"{PROTO}.DeleteTopic"),
    HttpRule("POST", f"/v1/{{topic={_TP}}}:publish", f"{PROTO}.Publish", "*"),
    HttpRule("PUT", f"/v1/{{name={_SP}}}", f"{SUBSCRIBER}.CreateSubscription", "*"),
    HttpRule("GET", f"/v1/{{subscription={_SP}}}", f"{SUBSCRIBER}.GetSubscription"),
    HttpRule("GET", "/v1/{project=projects/*}/subscriptions", f"{SUBSCRIBER}.ListSubscriptions"),
    HttpRule("DELETE", f"/v1/{{subscription={_SP}}}", f"{SUBSCRIBER}.DeleteSubscription"),
]


SERVICE = Service(
    apis=(Api(API, "Cloud Pub/Sub API", gcloud="PUBSUB"),),
    methods=(*METHODS,),
    rules=(*RULES,),
    tick=tick,
)
