"""Pub/Sub v1 topics (pubsub.googleapis.com): create (PUT), get, list, patch, delete — what
`gcloud pubsub topics create/describe/delete` and the deploy tool's Pub/Sub mode use. Messages are not kept.

Texts: "Resource already exists in the project (resource=T)." (409), "Resource not found (resource=T)." (404) and
"User not authorized to perform this action." (403), as Pub/Sub answers.
Assumption: the 403 carries no details.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from google.rpc import code_pb2

from emulator.core.handlers import Api, Call, Doc, Fields, HttpRule, JsonMethod, Service, json_method
from emulator.core.status import RpcError, invalid_argument, not_found
from emulator.core.world import Project
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


@dataclass
class TopicStore:
    """Pub/Sub topics in one project, by resource name."""

    topics: dict[Any, Any] = field(default_factory=dict)


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
