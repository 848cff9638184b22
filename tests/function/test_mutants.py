"""Tests that kill mutants the rest of tests/function let survive (`make mutation`, MUTATION.md).

Each names what it pins down; the mutant it was written for is in MUTATION.md.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from google.api_core import exceptions as core

from devkit.emulated import admin
from emulator.server import Emulator
from function import report
from function.causes import LINK_WITHHELD, Cause, classify
from function.config import Config, ConfigError, load
from function.run import Instance, Result, execute
from function.trigger import MAX_BODY, BadRequest, Trigger, from_http, from_pubsub
from tests.shared import WORKLOAD_MEMBER

LABEL_HINT = (
    "is not a label value; allowed: lower-case letters, digits, '_' and '-', "
    "starting with a letter or digit, at most 63 characters"
)


# --- function/config.py ---


def test_a_bad_k_service_is_named_as_the_job_default() -> None:
    with pytest.raises(ConfigError) as raised:
        load({"K_SERVICE": "svc.name"})
    assert str(raised.value) == f"K_SERVICE: 'svc.name' (CANARY_JOB's default) {LABEL_HINT}"


def test_a_bad_canary_job_is_named_itself_even_with_k_service_set() -> None:
    with pytest.raises(ConfigError) as raised:
        load({"K_SERVICE": "svc", "CANARY_JOB": "job.name"})
    assert str(raised.value) == f"CANARY_JOB: 'job.name' {LABEL_HINT}"


@pytest.mark.parametrize(("deadline", "budget"), [("5", 0.0), ("25", 15.0), ("30", 20.0), ("40", 20.0), ("540", 20.0)])
def test_the_default_lag_budget_is_twenty_seconds_at_most_the_deadline_less_ten(deadline: str, budget: float) -> None:
    assert load({"CANARY_DEADLINE_SECONDS": deadline}).audit_lag_budget_s == budget


# --- function/evidence.py, report.py, run.py, probe.py, clients.py: one run in process against the emulator ---
#
# The same path tests/e2e takes through functions-framework, without the framework: execute() with the real GAPIC
# clients over gRPC to a local emulator, so each world costs ≈ 0.1 s and mutation testing can afford it. Every step's
# status, summary and facts are compared whole (times and ids normalised), because each word is what an operator reads.

MODEL = "projects/demo-proj/locations/us-central1/publishers/google/models/gemini-2.5-flash-lite"

# Evidence items several worlds share, word for word.
DATA_ACCESS_FOUND: dict[str, Any] = {
    "data": {
        "insert_id": "<id>",
        "method": "google.cloud.aiplatform.v1.PredictionService.GenerateContent",
        "permission": "aiplatform.endpoints.predict",
        "principal": "canary-workload@demo-proj.iam.gserviceaccount.com",
        "resource": MODEL,
        "status": 7,
        "timestamp": "<T>",
    },
    "status": "found",
    "step": "data_access",
    "summary": "denied call recorded at <T>: canary-workload@demo-proj.iam.gserviceaccount.com was refused "
    "aiplatform.endpoints.predict on google.cloud.aiplatform.v1.PredictionService.GenerateContent",
}
NO_ADMIN_CHANGE: dict[str, Any] = {
    "status": "not_found",
    "step": "admin_activity",
    "summary": "no admin change that explains it in the last 60 min of the project's Admin Activity log (it may be "
    "older, or made on a folder or the organization, whose changes are logged there)",
}
ALICE = "alice@example.com"
# What the vpc_sc world's Policy Denied entry says of the source: the canary calls from Cloud Run's default egress.
DEFAULT_EGRESS_DETAIL = (
    "the request came from outside any VPC network (Cloud Run's default egress, or the internet); the perimeter's "
    "ingress rules and access levels admit this identity from no such source (they may admit it from the workload's "
    "own VPC network)"
)
TRIGGER = Trigger(
    "scheduler", job="gemini-canary-job", trace="0af7651916cd43dd8448eb211c80319c", span="b7ad6b7169203331"
)


def _remove(role: str) -> dict[str, str]:
    return {"actor": ALICE, "action": "remove_binding", "role": role, "member": WORKLOAD_MEMBER}


WORLDS: dict[str, tuple[str, list[dict[str, str]]]] = {
    "role_removed": ("data_access_on", [_remove("roles/aiplatform.user")]),
    "api_disabled": (
        "healthy",
        [{"actor": "bob@example.com", "action": "disable_service", "service": "aiplatform.googleapis.com"}],
    ),
    "vpc_sc": ("vpc_sc", []),
    "org_policy": ("org_policy", []),
    "deny_policy": ("deny_policy", []),
    "billing": ("billing_disabled", []),
    "data_access_off_everywhere": ("data_access_off_everywhere", []),
    "no_evidence_roles": ("iam_denied", [_remove("roles/browser"), _remove("roles/logging.privateLogViewer")]),
    "folder": ("data_access_on_folder", [_remove("roles/aiplatform.user")]),
}
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d(?::|%3A)\d\d(?::|%3A)\d\d(?:\.\d+)?Z")


def run_in(emulator: Emulator, actions: list[dict[str, str]], trigger: Trigger | None = None) -> Result:
    status, _ = admin(emulator, "PATCH", "world", {"logging": {"ingestion_lag_seconds": 0}})
    assert status == 200
    for action in actions:
        status, body = admin(emulator, "POST", "actions", action)
        assert status == 200, body
    config = Config(emulator=emulator.grpc.address, audit_lag_budget_s=0.0)
    return execute(Instance(config), trigger or Trigger("http"), list(config.targets))


def normalized(doc: Any, result: Result) -> Any:
    """Times, the run id, unique and insert ids and latencies replaced by placeholders; the rest exactly as made."""
    volatile = {result.run_id: "<run>"}
    volatile.update(
        {o.failure.metadata["uid"]: "<id>" for o in result.outcomes if o.failure and "uid" in o.failure.metadata}
    )
    for value in _walk(doc):
        if isinstance(value, dict):
            volatile.update({str(v): "<id>" for k, v in value.items() if k in ("unique_id", "insert_id", "uid")})
    text = json.dumps(doc, sort_keys=True, default=str) if not isinstance(doc, str) else doc
    for old, new in volatile.items():
        text = text.replace(old, new)
    text = _TIME.sub("<T>", text)
    text = re.sub(r'"(duration_ms|latency_ms)": [0-9.]+', r'"\1": 0', text)
    text = re.sub(r"\b\d+ ms\b", "<n> ms", text)
    return text if isinstance(doc, str) else json.loads(text)


def _walk(doc: Any) -> Any:
    yield doc
    if isinstance(doc, dict):
        for value in doc.values():
            yield from _walk(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from _walk(value)


EXPECTED_EVIDENCE: dict[str, Any] = {
    "role_removed": {
        "change": {
            "actor": "alice@example.com",
            "at": "<T>",
            "detail": "roles/aiplatform.user removed from "
            "serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com",
            "kind": "role_removed",
            "role": "roles/aiplatform.user",
        },
        "data_access_logs_on": True,
        "data_access_logs_where": "projects/demo-proj",
        "denial_entry": {
            "insert_id": "<id>",
            "method": "google.cloud.aiplatform.v1.PredictionService.GenerateContent",
            "permission": "aiplatform.endpoints.predict",
            "principal": "canary-workload@demo-proj.iam.gserviceaccount.com",
            "resource": MODEL,
            "status": 7,
            "timestamp": "<T>",
        },
        "items": [
            {
                "data": {
                    "held": [
                        "logging.logEntries.list",
                        "logging.privateLogEntries.list",
                        "monitoring.timeSeries.create",
                        "resourcemanager.projects.getIamPolicy",
                    ],
                    "missing": [],
                },
                "status": "found",
                "step": "iam",
                "summary": "canary-workload@demo-proj.iam.gserviceaccount.com does not hold "
                "aiplatform.endpoints.predict on projects/demo-proj: no role grants it",
            },
            {
                "data": {
                    "data_read": True,
                    "roles_held": ["roles/browser", "roles/logging.privateLogViewer", "roles/monitoring.metricWriter"],
                    "where": "projects/demo-proj",
                },
                "status": "found",
                "step": "audit_config",
                "summary": "Data Access audit logs (DATA_READ) for aiplatform.googleapis.com are on (set on "
                "projects/demo-proj); canary-workload@demo-proj.iam.gserviceaccount.com holds "
                "roles/browser, roles/logging.privateLogViewer, roles/monitoring.metricWriter on the "
                "project",
            },
            DATA_ACCESS_FOUND,
            {
                "data": {
                    "actor": "alice@example.com",
                    "at": "<T>",
                    "detail": "roles/aiplatform.user removed from "
                    "serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com",
                    "kind": "role_removed",
                    "role": "roles/aiplatform.user",
                },
                "status": "found",
                "step": "admin_activity",
                "summary": "roles/aiplatform.user removed from "
                "serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com by "
                "alice@example.com at <T>",
            },
        ],
        "pending": False,
        "predict_granted": False,
        "roles_held": ["roles/browser", "roles/logging.privateLogViewer", "roles/monitoring.metricWriter"],
    },
    "api_disabled": {
        "change": {
            "actor": "bob@example.com",
            "at": "<T>",
            "detail": "aiplatform.googleapis.com disabled",
            "kind": "service_disabled",
        },
        "items": [
            {
                "data": {
                    "held": [
                        "aiplatform.endpoints.predict",
                        "logging.logEntries.list",
                        "logging.privateLogEntries.list",
                        "monitoring.timeSeries.create",
                        "resourcemanager.projects.getIamPolicy",
                    ],
                    "missing": [],
                },
                "status": "found",
                "step": "iam",
                "summary": "canary-workload@demo-proj.iam.gserviceaccount.com holds aiplatform.endpoints.predict "
                "on projects/demo-proj through its roles (allow policies)",
            },
            {
                "data": {
                    "actor": "bob@example.com",
                    "at": "<T>",
                    "detail": "aiplatform.googleapis.com disabled",
                    "kind": "service_disabled",
                },
                "status": "found",
                "step": "admin_activity",
                "summary": "aiplatform.googleapis.com disabled by bob@example.com at <T>",
            },
        ],
        "pending": False,
        "predict_granted": True,
    },
    "vpc_sc": {
        "items": [
            {
                "data": {
                    "held": [
                        "aiplatform.endpoints.predict",
                        "logging.logEntries.list",
                        "logging.privateLogEntries.list",
                        "monitoring.timeSeries.create",
                        "resourcemanager.projects.getIamPolicy",
                    ],
                    "missing": [],
                },
                "status": "found",
                "step": "iam",
                "summary": "canary-workload@demo-proj.iam.gserviceaccount.com holds aiplatform.endpoints.predict "
                "on projects/demo-proj through its roles (allow policies)",
            },
            {
                "data": {
                    "caller_network": "",
                    "insert_id": "<id>",
                    "network_detail": DEFAULT_EGRESS_DETAIL,
                    "perimeter": "accessPolicies/555555555555/servicePerimeters/ml_perimeter",
                    "timestamp": "<T>",
                    "unique_id": "<id>",
                    "violation_reason": "NO_MATCHING_ACCESS_LEVEL",
                },
                "status": "found",
                "step": "policy_denied",
                "summary": "VPC Service Controls refused the call (NO_MATCHING_ACCESS_LEVEL) at perimeter "
                "accessPolicies/555555555555/servicePerimeters/ml_perimeter; " + DEFAULT_EGRESS_DETAIL,
            },
        ],
        "pending": False,
        "policy_denied_entry": {
            "caller_network": "",
            "insert_id": "<id>",
            "network_detail": DEFAULT_EGRESS_DETAIL,
            "perimeter": "accessPolicies/555555555555/servicePerimeters/ml_perimeter",
            "timestamp": "<T>",
            "unique_id": "<id>",
            "violation_reason": "NO_MATCHING_ACCESS_LEVEL",
        },
        "predict_granted": True,
    },
    "org_policy": {
        "items": [
            {
                "data": {
                    "held": [
                        "aiplatform.endpoints.predict",
                        "logging.logEntries.list",
                        "logging.privateLogEntries.list",
                        "monitoring.timeSeries.create",
                        "resourcemanager.projects.getIamPolicy",
                    ],
                    "missing": [],
                },
                "status": "found",
                "step": "iam",
                "summary": "canary-workload@demo-proj.iam.gserviceaccount.com holds aiplatform.endpoints.predict "
                "on projects/demo-proj through its roles (allow policies)",
            },
            {
                "status": "not_found",
                "step": "admin_activity",
                "summary": "no admin change that explains it in the last 60 min of the project's Admin Activity "
                "log: constraints/vertexai.allowedModels is most likely set on a folder or the "
                "organization, whose changes are logged there, not in the project; ask your "
                "organization policy administrator (see remedies)",
            },
        ],
        "pending": False,
        "predict_granted": True,
    },
    "deny_policy": {
        "data_access_logs_on": True,
        "data_access_logs_where": "projects/demo-proj",
        "denial_entry": {
            "insert_id": "<id>",
            "method": "google.cloud.aiplatform.v1.PredictionService.GenerateContent",
            "permission": "aiplatform.endpoints.predict",
            "principal": "canary-workload@demo-proj.iam.gserviceaccount.com",
            "resource": MODEL,
            "status": 7,
            "timestamp": "<T>",
        },
        "items": [
            {
                "data": {
                    "held": [
                        "aiplatform.endpoints.predict",
                        "logging.logEntries.list",
                        "logging.privateLogEntries.list",
                        "monitoring.timeSeries.create",
                        "resourcemanager.projects.getIamPolicy",
                    ],
                    "missing": [],
                },
                "status": "found",
                "step": "iam",
                "summary": "canary-workload@demo-proj.iam.gserviceaccount.com holds aiplatform.endpoints.predict "
                "on projects/demo-proj through its roles (allow policies), yet Google denied the "
                "call: an IAM deny policy (attached to the project, a folder or the organization) or "
                "a principal access boundary policy takes it away; TestIamPermissions sees allow "
                "policies only",
            },
            {
                "data": {
                    "data_read": True,
                    "roles_held": [
                        "roles/aiplatform.user",
                        "roles/browser",
                        "roles/logging.privateLogViewer",
                        "roles/monitoring.metricWriter",
                    ],
                    "where": "projects/demo-proj",
                },
                "status": "found",
                "step": "audit_config",
                "summary": "Data Access audit logs (DATA_READ) for aiplatform.googleapis.com are on (set on "
                "projects/demo-proj); canary-workload@demo-proj.iam.gserviceaccount.com holds "
                "roles/aiplatform.user, roles/browser, roles/logging.privateLogViewer, "
                "roles/monitoring.metricWriter on the project",
            },
            DATA_ACCESS_FOUND,
            NO_ADMIN_CHANGE,
        ],
        "pending": False,
        "predict_granted": True,
        "roles_held": [
            "roles/aiplatform.user",
            "roles/browser",
            "roles/logging.privateLogViewer",
            "roles/monitoring.metricWriter",
        ],
    },
    "billing": {
        "items": [
            {
                "data": {
                    "held": [
                        "aiplatform.endpoints.predict",
                        "logging.logEntries.list",
                        "logging.privateLogEntries.list",
                        "monitoring.timeSeries.create",
                        "resourcemanager.projects.getIamPolicy",
                    ],
                    "missing": [],
                },
                "status": "found",
                "step": "iam",
                "summary": "canary-workload@demo-proj.iam.gserviceaccount.com holds aiplatform.endpoints.predict "
                "on projects/demo-proj through its roles (allow policies)",
            },
            {
                "status": "not_found",
                "step": "admin_activity",
                "summary": "no admin change that explains it in the last 60 min of the project's Admin Activity "
                "log: billing changes are also logged on the billing account, which the project's log "
                "may not show",
            },
        ],
        "pending": False,
        "predict_granted": True,
    },
    "data_access_off_everywhere": {
        "data_access_logs_on": False,
        "items": [
            {
                "data": {
                    "held": [
                        "logging.logEntries.list",
                        "logging.privateLogEntries.list",
                        "monitoring.timeSeries.create",
                        "resourcemanager.projects.getIamPolicy",
                    ],
                    "missing": [],
                },
                "status": "found",
                "step": "iam",
                "summary": "canary-workload@demo-proj.iam.gserviceaccount.com does not hold "
                "aiplatform.endpoints.predict on projects/demo-proj: no role grants it",
            },
            {
                "data": {
                    "data_read": False,
                    "roles_held": ["roles/browser", "roles/logging.privateLogViewer", "roles/monitoring.metricWriter"],
                },
                "status": "found",
                "step": "audit_config",
                "summary": "Data Access audit logs (DATA_READ) for aiplatform.googleapis.com are off: not "
                "enabled on projects/demo-proj nor on any of its folders or its organization; "
                "canary-workload@demo-proj.iam.gserviceaccount.com holds roles/browser, "
                "roles/logging.privateLogViewer, roles/monitoring.metricWriter on the project",
            },
            {
                "status": "off",
                "step": "data_access",
                "summary": "Data Access audit logs are off for aiplatform.googleapis.com on projects/demo-proj, "
                "its folders and its organization, so Google did not record the denial: no audit "
                "entry here does NOT mean the call was allowed. Turn them on to see every denied call "
                "(see remedies).",
            },
            NO_ADMIN_CHANGE,
        ],
        "pending": False,
        "predict_granted": False,
        "roles_held": ["roles/browser", "roles/logging.privateLogViewer", "roles/monitoring.metricWriter"],
    },
    "no_evidence_roles": {
        "items": [
            {
                "data": {
                    "held": ["monitoring.timeSeries.create"],
                    "missing": [
                        "logging.logEntries.list",
                        "logging.privateLogEntries.list",
                        "resourcemanager.projects.getIamPolicy",
                    ],
                },
                "status": "found",
                "step": "iam",
                "summary": "canary-workload@demo-proj.iam.gserviceaccount.com does not hold "
                "aiplatform.endpoints.predict on projects/demo-proj: no role grants it",
            },
            {
                "missing_permission": "resourcemanager.projects.getIamPolicy",
                "status": "unavailable",
                "step": "audit_config",
                "summary": "cannot tell whether Data Access audit logs are on",
            },
            {
                "missing_permission": "logging.privateLogEntries.list",
                "status": "unavailable",
                "step": "data_access",
                "summary": "the canary cannot read Data Access audit logs",
            },
            {
                "missing_permission": "logging.logEntries.list",
                "status": "unavailable",
                "step": "admin_activity",
                "summary": "the canary cannot read audit logs",
            },
        ],
        "pending": False,
        "predict_granted": False,
    },
    "folder": {
        "data_access_logs_on": True,
        "data_access_logs_where": "folders/345678901234",
        "denial_entry": {
            "insert_id": "<id>",
            "method": "google.cloud.aiplatform.v1.PredictionService.GenerateContent",
            "permission": "aiplatform.endpoints.predict",
            "principal": "canary-workload@demo-proj.iam.gserviceaccount.com",
            "resource": MODEL,
            "status": 7,
            "timestamp": "<T>",
        },
        "items": [
            {
                "data": {
                    "held": [
                        "logging.logEntries.list",
                        "logging.privateLogEntries.list",
                        "monitoring.timeSeries.create",
                        "resourcemanager.projects.getIamPolicy",
                    ],
                    "missing": [],
                },
                "status": "found",
                "step": "iam",
                "summary": "canary-workload@demo-proj.iam.gserviceaccount.com does not hold "
                "aiplatform.endpoints.predict on projects/demo-proj: no role grants it",
            },
            {
                "data": {
                    "data_read": True,
                    "roles_held": ["roles/browser", "roles/logging.privateLogViewer", "roles/monitoring.metricWriter"],
                    "where": "folders/345678901234",
                },
                "status": "found",
                "step": "audit_config",
                "summary": "Data Access audit logs (DATA_READ) for aiplatform.googleapis.com are on (set on "
                "folders/345678901234); canary-workload@demo-proj.iam.gserviceaccount.com holds "
                "roles/browser, roles/logging.privateLogViewer, roles/monitoring.metricWriter on the "
                "project",
            },
            DATA_ACCESS_FOUND,
            NO_ADMIN_CHANGE,
        ],
        "pending": False,
        "predict_granted": False,
        "roles_held": ["roles/browser", "roles/logging.privateLogViewer", "roles/monitoring.metricWriter"],
    },
}

# The denial at a glance: the cause, the principal, who removed which role and when (the target, the permission and
# the fix are in the targets below).
HEADLINE = (
    "gemini-canary DENIED: iam_permission_denied (1 target) as canary-workload@demo-proj.iam.gserviceaccount.com; "
    "roles/aiplatform.user removed by alice@example.com at <T>"
)

EXPECTED_LOG_ENTRY: dict[str, Any] = {
    "duration_ms": 0,
    "logging.googleapis.com/labels": {
        "canary_causes": "iam_permission_denied",
        "canary_run_id": "<run>",
        "canary_verdict": "denied",
    },
    "logging.googleapis.com/spanId": "b7ad6b7169203331",
    "logging.googleapis.com/trace": "projects/demo-proj/traces/0af7651916cd43dd8448eb211c80319c",
    "message": HEADLINE,
    "metrics": {"series": 4, "written": True},
    "principal": "canary-workload@demo-proj.iam.gserviceaccount.com",
    "project": "demo-proj",
    "run_id": "<run>",
    "severity": "ERROR",
    "started_at": "<T>",
    "summary": HEADLINE,
    "targets": [
        {
            "cause": "iam_permission_denied",
            "error": {
                "cause": "iam_permission_denied",
                "code": 403,
                "domain": "aiplatform.googleapis.com",
                "error_type": "PermissionDenied",
                "message": "Permission 'aiplatform.endpoints.predict' denied on resource "
                f"'//aiplatform.googleapis.com/{MODEL}' "
                "(or it may not exist).",
                "metadata": {
                    "permission": "aiplatform.endpoints.predict",
                    "resource": MODEL,
                },
                "reason": "IAM_PERMISSION_DENIED",
                "status": "PERMISSION_DENIED",
            },
            "latency_ms": 0,
            "remedies": [
                {
                    "command": "gcloud projects add-iam-policy-binding demo-proj "
                    "--member=serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com "
                    "--role=roles/aiplatform.user --condition=None",
                    "title": "Grant roles/aiplatform.user to the workload's service account",
                },
                {
                    "title": "Ask Policy Troubleshooter why",
                    "url": "https://console.cloud.google.com/iam-admin/troubleshooter;principal=canary-workload@demo-proj.iam.gserviceaccount.com;resources=%2F%2Fcloudresourcemanager.googleapis.com%2Fprojects%2Fdemo-proj;permissions=aiplatform.endpoints.predict/result?project=demo-proj",
                },
                {
                    "title": "See the audit entries in Logs Explorer",
                    "url": "https://console.cloud.google.com/logs/query;query=timestamp%3E%3D%22<T>%22%20AND%20%28%28logName%3D%22projects%2Fdemo-proj%2Flogs%2Fcloudaudit.googleapis.com%252Fdata_access%22%20AND%20protoPayload.serviceName%3D%22aiplatform.googleapis.com%22%20AND%20protoPayload.status.code%3D7%20AND%20protoPayload.authenticationInfo.principalEmail%3D%22canary-workload%40demo-proj.iam.gserviceaccount.com%22%29%29?project=demo-proj",
                },
            ],
            "summary": "gemini-2.5-flash-lite@us-central1: iam_permission_denied; "
            "canary-workload@demo-proj.iam.gserviceaccount.com lacks "
            "aiplatform.endpoints.predict on demo-proj; roles/aiplatform.user removed from "
            "serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com by "
            "alice@example.com at <T>; fix: gcloud projects add-iam-policy-binding demo-proj "
            "--member=serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com "
            "--role=roles/aiplatform.user --condition=None",
            "target": "gemini-2.5-flash-lite@us-central1",
        }
    ],
    "trigger": {"job": "gemini-canary-job", "kind": "scheduler"},
    "verdict": "denied",
}

EXPECTED_TEXT = [
    HEADLINE,
    "",
    "iam_permission_denied  gemini-2.5-flash-lite@us-central1",
    "  gemini-2.5-flash-lite@us-central1  403 PERMISSION_DENIED IAM_PERMISSION_DENIED  <n> ms",
    "  why         canary-workload@demo-proj.iam.gserviceaccount.com lacks aiplatform.endpoints.predict on demo-proj",
    "  permission  aiplatform.endpoints.predict on "
    "projects/demo-proj/locations/us-central1/publishers/google/models/gemini-2.5-flash-lite",
    "  fix         Grant roles/aiplatform.user to the workload's service account",
    "    gcloud projects add-iam-policy-binding demo-proj "
    "--member=serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com --role=roles/aiplatform.user "
    "--condition=None",
    "  also        Ask Policy Troubleshooter why [1]",
    "  also        See the audit entries in Logs Explorer [2]",
    "",
    "run <run>  project demo-proj  as canary-workload@demo-proj.iam.gserviceaccount.com  trigger scheduler "
    "gemini-canary-job  <n> ms",
    "changed  roles/aiplatform.user removed from serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com by "
    "alice@example.com at <T>",
    "evidence",
    "  iam             found      canary-workload@demo-proj.iam.gserviceaccount.com does not hold "
    "aiplatform.endpoints.predict on projects/demo-proj: no role grants it",
    "  audit_config    found      Data Access audit logs (DATA_READ) for aiplatform.googleapis.com are on "
    "(set on projects/demo-proj); canary-workload@demo-proj.iam.gserviceaccount.com holds roles/browser, "
    "roles/logging.privateLogViewer, roles/monitoring.metricWriter on the project",
    "  data_access     found      denied call recorded at <T>: "
    "canary-workload@demo-proj.iam.gserviceaccount.com was refused aiplatform.endpoints.predict on "
    "google.cloud.aiplatform.v1.PredictionService.GenerateContent",
    "  admin_activity  found      roles/aiplatform.user removed from "
    "serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com by alice@example.com at <T>",
    "metrics  written (4 series)",
    "",
    "links",
    "  [1] "
    "https://console.cloud.google.com/iam-admin/troubleshooter;principal=canary-workload@demo-proj.iam.gserviceaccount.com;resources=%2F%2Fcloudresourcemanager.googleapis.com%2Fprojects%2Fdemo-proj;permissions=aiplatform.endpoints.predict/result?project=demo-proj",
    "  [2] "
    "https://console.cloud.google.com/logs/query;query=timestamp%3E%3D%22<T>%22%20AND%20%28%28logName%3D%22projects%2Fdemo-proj%2Flogs%2Fcloudaudit.googleapis.com%252Fdata_access%22%20AND%20protoPayload.serviceName%3D%22aiplatform.googleapis.com%22%20AND%20protoPayload.status.code%3D7%20AND%20protoPayload.authenticationInfo.principalEmail%3D%22canary-workload%40demo-proj.iam.gserviceaccount.com%22%29%29?project=demo-proj",
]

EXPECTED_REMEDIES: dict[str, Any] = {
    "role_removed": [
        [
            {
                "command": "gcloud projects add-iam-policy-binding demo-proj "
                "--member=serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com "
                "--role=roles/aiplatform.user --condition=None",
                "title": "Grant roles/aiplatform.user to the workload's service account",
            },
            {
                "title": "Ask Policy Troubleshooter why",
                "url": "https://console.cloud.google.com/iam-admin/troubleshooter;principal=canary-workload@demo-proj.iam.gserviceaccount.com;resources=%2F%2Fcloudresourcemanager.googleapis.com%2Fprojects%2Fdemo-proj;permissions=aiplatform.endpoints.predict/result?project=demo-proj",
            },
            {
                "title": "See the audit entries in Logs Explorer",
                "url": "https://console.cloud.google.com/logs/query;query=timestamp%3E%3D%22<T>%22%20AND%20%28%28logName%3D%22projects%2Fdemo-proj%2Flogs%2Fcloudaudit.googleapis.com%252Fdata_access%22%20AND%20protoPayload.serviceName%3D%22aiplatform.googleapis.com%22%20AND%20protoPayload.status.code%3D7%20AND%20protoPayload.authenticationInfo.principalEmail%3D%22canary-workload%40demo-proj.iam.gserviceaccount.com%22%29%29?project=demo-proj",
            },
        ]
    ],
    "api_disabled": [
        [
            {
                "command": "gcloud services enable aiplatform.googleapis.com --project=demo-proj",
                "title": "Enable the Vertex AI API",
                "url": "https://console.developers.google.com/apis/api/aiplatform.googleapis.com/overview?project=412345678901",
            }
        ]
    ],
    "vpc_sc": [
        [
            {
                "title": "Open the VPC Service Controls troubleshooter for this denial",
                "url": "https://console.cloud.google.com/security/service-perimeter/troubleshoot;uniqueId=<id>?project=demo-proj",
            },
            {
                "command": "python -m deploy apply --project demo-proj --region REGION --service-account "
                "canary-workload@demo-proj.iam.gserviceaccount.com --kind job --network NETWORK --subnet SUBNET "
                "--vpc-egress all-traffic --notify-email ONCALL_EMAIL",
                "title": "Give the canary the workload's egress (Direct VPC egress, all traffic) so it calls from "
                "the network the perimeter admits",
            },
            {
                "command": "gcloud access-context-manager perimeters describe ml_perimeter --policy=555555555555",
                "title": "Or inspect the perimeter's ingress rules and access levels (add an ingress rule for the "
                'identity from any source (an ingress source with accessLevel "*"))',
            },
            {
                "title": "See the audit entries in Logs Explorer",
                "url": "https://console.cloud.google.com/logs/query;query=timestamp%3E%3D%22<T>%22%20AND%20%28%28LOG_ID%28%22cloudaudit.googleapis.com%2Fpolicy%22%29%20AND%20NOT%20protoPayload.metadata.dryRun%3Dtrue%20AND%20%28protoPayload.metadata.vpcServiceControlsUniqueId%3D%22<id>%22%20OR%20protoPayload.authenticationInfo.principalEmail%3D%22canary-workload%40demo-proj.iam.gserviceaccount.com%22%29%29%29?project=demo-proj",
            },
        ]
    ],
    "org_policy": [
        [
            {
                "command": "gcloud org-policies describe vertexai.allowedModels --project=demo-proj --effective",
                "title": "See the effective model allowlist (set here, on a folder or the organization)",
            },
            {
                "title": "Ask an organization policy administrator to allow "
                "publishers/google/models/gemini-2.5-flash-lite:predict",
                "url": "https://cloud.google.com/vertex-ai/generative-ai/docs/control-model-access",
            },
        ]
    ],
    "deny_policy": [
        [
            {
                "command": "gcloud iam policies list "
                "--attachment-point=cloudresourcemanager.googleapis.com/projects/demo-proj --kind=denypolicies "
                "--format=json",
                "title": "Find the deny policy that blocks it, on the project",
            },
            {
                "command": "gcloud beta projects get-ancestors-iam-policy demo-proj --include-deny --format=json",
                "title": "…or on a folder or the organization above it",
            },
            {
                "title": "Ask Policy Troubleshooter why",
                "url": "https://console.cloud.google.com/iam-admin/troubleshooter;principal=canary-workload@demo-proj.iam.gserviceaccount.com;resources=%2F%2Fcloudresourcemanager.googleapis.com%2Fprojects%2Fdemo-proj;permissions=aiplatform.endpoints.predict/result?project=demo-proj",
            },
            {
                "title": "See the audit entries in Logs Explorer",
                "url": "https://console.cloud.google.com/logs/query;query=timestamp%3E%3D%22<T>%22%20AND%20%28%28logName%3D%22projects%2Fdemo-proj%2Flogs%2Fcloudaudit.googleapis.com%252Fdata_access%22%20AND%20protoPayload.serviceName%3D%22aiplatform.googleapis.com%22%20AND%20protoPayload.status.code%3D7%20AND%20protoPayload.authenticationInfo.principalEmail%3D%22canary-workload%40demo-proj.iam.gserviceaccount.com%22%29%29?project=demo-proj",
            },
        ]
    ],
    "billing": [
        [
            {
                "command": "gcloud billing projects link demo-proj --billing-account=BILLING_ACCOUNT_ID",
                "title": "Link an open billing account to the project",
                "url": "https://console.developers.google.com/billing/enable?project=412345678901",
            },
            {"command": "gcloud billing projects describe demo-proj", "title": "See the project's billing state"},
        ]
    ],
    "data_access_off_everywhere": [
        [
            {
                "command": "gcloud projects add-iam-policy-binding demo-proj "
                "--member=serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com "
                "--role=roles/aiplatform.user --condition=None",
                "title": "Grant roles/aiplatform.user to the workload's service account",
            },
            {
                "title": "Ask Policy Troubleshooter why",
                "url": "https://console.cloud.google.com/iam-admin/troubleshooter;principal=canary-workload@demo-proj.iam.gserviceaccount.com;resources=%2F%2Fcloudresourcemanager.googleapis.com%2Fprojects%2Fdemo-proj;permissions=aiplatform.endpoints.predict/result?project=demo-proj",
            },
            {
                "command": "gcloud projects get-iam-policy demo-proj --format=json | jq '.auditConfigs = "
                "((.auditConfigs "
                '// []) | map(select(.service != "aiplatform.googleapis.com")) + '
                '[{"service":"aiplatform.googleapis.com","auditLogConfigs":'
                '[{"logType":"DATA_READ"},{"logType":"DATA_WRITE"}]}])\' '
                "| gcloud projects set-iam-policy demo-proj /dev/stdin",
                "title": "Turn on Data Access audit logs for Vertex AI so every denial is recorded",
            },
            {
                "title": "See the audit entries in Logs Explorer",
                "url": "https://console.cloud.google.com/logs/query;query=timestamp%3E%3D%22<T>%22%20AND%20%28%28logName%3D%22projects%2Fdemo-proj%2Flogs%2Fcloudaudit.googleapis.com%252Fdata_access%22%20AND%20protoPayload.serviceName%3D%22aiplatform.googleapis.com%22%20AND%20protoPayload.status.code%3D7%20AND%20protoPayload.authenticationInfo.principalEmail%3D%22canary-workload%40demo-proj.iam.gserviceaccount.com%22%29%29?project=demo-proj",
            },
        ]
    ],
    "no_evidence_roles": [
        [
            {
                "command": "gcloud projects add-iam-policy-binding demo-proj "
                "--member=serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com "
                "--role=roles/aiplatform.user --condition=None",
                "title": "Grant roles/aiplatform.user to the workload's service account",
            },
            {
                "title": "Ask Policy Troubleshooter why",
                "url": "https://console.cloud.google.com/iam-admin/troubleshooter;principal=canary-workload@demo-proj.iam.gserviceaccount.com;resources=%2F%2Fcloudresourcemanager.googleapis.com%2Fprojects%2Fdemo-proj;permissions=aiplatform.endpoints.predict/result?project=demo-proj",
            },
            {
                "command": "gcloud beta projects get-ancestors-iam-policy demo-proj --format=json",
                "title": "See whether Data Access audit logs are on at a folder or the organization (auditConfigs)",
            },
        ]
    ],
    "folder": [
        [
            {
                "command": "gcloud projects add-iam-policy-binding demo-proj "
                "--member=serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com "
                "--role=roles/aiplatform.user --condition=None",
                "title": "Grant roles/aiplatform.user to the workload's service account",
            },
            {
                "title": "Ask Policy Troubleshooter why",
                "url": "https://console.cloud.google.com/iam-admin/troubleshooter;principal=canary-workload@demo-proj.iam.gserviceaccount.com;resources=%2F%2Fcloudresourcemanager.googleapis.com%2Fprojects%2Fdemo-proj;permissions=aiplatform.endpoints.predict/result?project=demo-proj",
            },
            {
                "title": "See the audit entries in Logs Explorer",
                "url": "https://console.cloud.google.com/logs/query;query=timestamp%3E%3D%22<T>%22%20AND%20%28%28logName%3D%22projects%2Fdemo-proj%2Flogs%2Fcloudaudit.googleapis.com%252Fdata_access%22%20AND%20protoPayload.serviceName%3D%22aiplatform.googleapis.com%22%20AND%20protoPayload.status.code%3D7%20AND%20protoPayload.authenticationInfo.principalEmail%3D%22canary-workload%40demo-proj.iam.gserviceaccount.com%22%29%29?project=demo-proj",
            },
        ]
    ],
}


@pytest.fixture
def world_emulator() -> Iterator[Callable[[str], Emulator]]:
    """An emulator on a running clock (the canary stamps its audit-log queries with its own wall clock), on the
    metadata port tests/conftest.py reserved for this process."""
    port = int(os.environ["GCE_METADATA_HOST"].rsplit(":", 1)[1])
    started: list[Emulator] = []

    def start(scenario: str) -> Emulator:
        emulator = Emulator(scenario, metadata_port=port, clock_mode="running").start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.mark.parametrize("world", list(WORLDS))
def test_the_evidence_of_each_world_word_for_word(world: str, world_emulator: Callable[[str], Emulator]) -> None:
    scenario, actions = WORLDS[world]
    result = run_in(world_emulator(scenario), actions)
    assert result.error is None
    assert normalized(result.evidence.to_json(), result) == EXPECTED_EVIDENCE[world]


@pytest.mark.parametrize("world", list(WORLDS))
def test_the_remedies_of_each_world_word_for_word(world: str, world_emulator: Callable[[str], Emulator]) -> None:
    scenario, actions = WORLDS[world]
    result = run_in(world_emulator(scenario), actions)
    remedies = [target.get("remedies", []) for target in report.to_json(result)["targets"]]
    assert normalized(remedies, result) == EXPECTED_REMEDIES[world]


def test_the_log_entry_and_the_text_of_a_denial(world_emulator: Callable[[str], Emulator]) -> None:
    scenario, actions = WORLDS["role_removed"]
    result = run_in(world_emulator(scenario), actions, TRIGGER)
    entry = report.log_entry(result)
    assert entry.pop("evidence") == report.to_json(result)["evidence"]
    assert normalized(entry, result) == EXPECTED_LOG_ENTRY
    assert json.loads(report.log_line(result)) == json.loads(json.dumps(report.log_entry(result), default=str))
    assert normalized(report.to_text(result), result).splitlines() == EXPECTED_TEXT


# --- function/causes.py: REST errors as google-api-core builds them from a response ---


def _rest_error(code: int, body: Any) -> Exception:
    response = requests.Response()
    response.status_code = code
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.request = requests.Request("POST", "https://us-central1-aiplatform.googleapis.com/v1/m:x").prepare()
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details", []) if isinstance(error, dict) else []
    return core.from_http_status(code, "the message", response=response, details=details)


@pytest.mark.parametrize(
    ("code", "body", "status", "cause"),
    [
        # streamGenerateContent answers a list: its first object is the error
        (400, ["x", {"error": {"code": 400, "status": "FAILED_PRECONDITION"}}], "FAILED_PRECONDITION", Cause.UNKNOWN),
        (400, [], "INVALID_ARGUMENT", Cause.UNKNOWN),
        (503, b"<html>Service Unavailable</html>", "UNAVAILABLE", Cause.UNAVAILABLE),  # no JSON: from the code
        (409, {"error": "text"}, "ABORTED", Cause.UNKNOWN),
        (409, {"error": {"message": "no status"}}, "ABORTED", Cause.UNKNOWN),
        (409, {"error": {"status": "not_a_status"}}, "ABORTED", Cause.UNKNOWN),
        (409, {"error": {"status": "ALREADY_EXISTS"}}, "ALREADY_EXISTS", Cause.UNKNOWN),
        # the status decides where the code alone does not
        (400, {"error": {"status": "UNAVAILABLE"}}, "UNAVAILABLE", Cause.UNAVAILABLE),
        (400, {"error": {"status": "DEADLINE_EXCEEDED"}}, "DEADLINE_EXCEEDED", Cause.DEADLINE),
    ],
)
def test_the_status_a_rest_body_states(code: int, body: Any, status: str, cause: Cause) -> None:
    failure = classify(_rest_error(code, body))
    assert (failure.code, failure.status, failure.cause) == (code, status, cause)
    assert failure.message == "the message"


def test_every_help_link_and_violation_of_a_rest_body_is_kept() -> None:
    detail = "type.googleapis.com/google.rpc."
    body = {
        "error": {
            "status": "FAILED_PRECONDITION",
            "details": [
                {
                    "@type": f"{detail}Help",
                    "links": [{"description": "a", "url": "https://console.cloud.google.com/a"}],
                },
                {"@type": f"{detail}Help", "links": [{"url": "https://cloud.google.com/b"}, {"description": "c"}]},
                {"@type": f"{detail}PreconditionFailure", "violations": [{"type": "T1", "subject": "s1"}]},
                {"@type": f"{detail}PreconditionFailure", "violations": [{"type": "T2", "description": "d2"}]},
            ],
        }
    }
    failure = classify(_rest_error(400, body))
    assert failure.links == [
        {"description": "a", "url": "https://console.cloud.google.com/a"},
        {"description": "", "url": "https://cloud.google.com/b"},
        {"description": "c", "url_withheld": LINK_WITHHELD},
    ]
    assert failure.violations == [{"type": "T1", "subject": "s1"}, {"type": "T2", "description": "d2"}]


# --- function/trigger.py ---


def _refusal(call: Callable[..., Any], *args: Any) -> tuple[int, str]:
    with pytest.raises(BadRequest) as caught:
        call(*args)
    return caught.value.status, caught.value.message


def test_a_post_without_a_media_type_is_json() -> None:
    config = Config()
    for content_type in ("", "; charset=utf-8"):
        request = from_http(config, "POST", {}, {"content-type": content_type}, b"{}")
        assert request.targets == list(config.targets)


def test_a_value_echoed_is_cut_after_80_characters_only() -> None:
    config = Config()
    exactly = "a/" + "b" * 78
    assert _refusal(from_http, config, "POST", {}, {"content-type": exactly}, b"{}") == (
        415,
        f"content type {exactly!r}; send application/json",
    )
    longer = exactly + "c"
    assert _refusal(from_http, config, "POST", {}, {"content-type": longer}, b"{}") == (
        415,
        f"content type {exactly + '…'!r}; send application/json",
    )


def _push(data: bytes | str) -> dict[str, Any]:
    raw = data if isinstance(data, str) else base64.b64encode(data).decode()
    return {"message": {"data": raw}}


def test_pubsub_data_must_be_strict_base64() -> None:
    assert _refusal(from_pubsub, Config(), _push("e30=*"), "1") == (400, "message data is not base64")
    assert from_pubsub(Config(), _push("e30="), "1").targets == list(Config().targets)


def test_pubsub_data_of_exactly_the_limit_is_read() -> None:
    body = b'{"targets": null}'
    exactly = body + b" " * (MAX_BODY - len(body))
    assert from_pubsub(Config(), _push(exactly), "1").targets == list(Config().targets)
    assert _refusal(from_pubsub, Config(), _push(exactly + b" "), "1") == (
        413,
        f"message data of {MAX_BODY + 1} bytes; at most {MAX_BODY} bytes",
    )


@pytest.mark.parametrize(("message_id", "kept"), [("AbC-123_x", "AbC-123_x"), ("ABC", "ABC"), ("a b", None)])
def test_pubsub_message_ids_in_either_case_are_kept(message_id: str, kept: str | None) -> None:
    assert from_pubsub(Config(), _push(b"{}"), message_id).trigger.message_id == kept
