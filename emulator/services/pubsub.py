"""Pub/Sub v1 topics (pubsub.googleapis.com): create (PUT), get, list, patch, delete — what
`gcloud pubsub topics create/describe/delete` and the deploy tool's Pub/Sub mode use — and publishing:
`publish(world, topic, data, attributes)` for the emulator's own publishers (Cloud Scheduler's Pub/Sub targets,
Monitoring's Pub/Sub notification channels).

Publish limits (docs/google-behaviour.md, "Pub/Sub push"): a message has data or at least one attribute; at most
100 attributes, a key of at most 256 bytes not starting with "goog", a value of at most 1024 bytes; 10 MB a message.
Assumption: message ids are decimal strings counting up per project from a random 16-digit start (Google's are
decimal strings of about that length and documents them only as unique within the topic).

Texts: "Resource already exists in the project (resource=T)." (409), "Resource not found (resource=T)." (404) and
"User not authorized to perform this action." (403), as Pub/Sub answers.
Assumption: the 403 carries no details.
"""

from __future__ import annotations

import copy
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from google.rpc import code_pb2

from emulator.core.handlers import Api, Call, Doc, Fields, HttpRule, JsonMethod, Service, json_method
from emulator.core.status import RpcError, invalid_argument, not_found
from emulator.core.world import Project, World
from emulator.services.kit import admit, listed, mask_paths, message, text

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


def create_topic(call: Call, request: Doc) -> Doc:
    ref, topic_id = _topic_name(text(request, "name"))
    project = _project(call, ref, "pubsub.topics.create")
    name = f"projects/{project.project_id}/topics/{topic_id}"
    if name in project.store(TopicStore).topics:
        raise RpcError(code_pb2.ALREADY_EXISTS, f"Resource already exists in the project (resource={topic_id}).")
    topic = {k: v for k, v in request.items() if k != "state"}
    project.store(TopicStore).topics[name] = {**topic, "name": name}
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
    _, topic = _topic(call, text(given, "name"), "pubsub.topics.update")
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
    return copy.deepcopy(topic)


def delete_topic(call: Call, request: Doc) -> Doc:
    project, topic = _topic(call, text(request, "topic"), "pubsub.topics.delete")
    del project.store(TopicStore).topics[topic["name"]]
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
    return message_id


_TP = "projects/*/topics/*"
METHODS: list[JsonMethod] = [
    json_method(PROTO, "CreateTopic", create_topic, API, TOPIC),
    json_method(PROTO, "GetTopic", get_topic, API, {"topic": None}),
    json_method(PROTO, "ListTopics", list_topics, API, {"project": None, "pageSize": None, "pageToken": None}),
    json_method(PROTO, "UpdateTopic", update_topic, API, {"topic": TOPIC, "updateMask": None}),
    json_method(PROTO, "DeleteTopic", delete_topic, API, {"topic": None}),
]

RULES: list[HttpRule] = [
    HttpRule("PUT", f"/v1/{{name={_TP}}}", f"{PROTO}.CreateTopic", "*"),
    HttpRule("GET", f"/v1/{{topic={_TP}}}", f"{PROTO}.GetTopic"),
    HttpRule("GET", "/v1/{project=projects/*}/topics", f"{PROTO}.ListTopics"),
    HttpRule("PATCH", f"/v1/{{topic.name={_TP}}}", f"{PROTO}.UpdateTopic", "*"),
    HttpRule("DELETE", f"/v1/{{topic={_TP}}}", f"{PROTO}.DeleteTopic"),
]


SERVICE = Service(
    apis=(Api(API, "Cloud Pub/Sub API", gcloud="PUBSUB"),),
    methods=(*METHODS,),
    rules=(*RULES,),
)
