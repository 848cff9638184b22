"""WriteLogEntries through the real logging_v2 GAPIC client over gRPC: Cloud Audit Logs' log names are Google's to
write, so a forged "who removed the role" entry is refused and never listed; other log names are written as before;
a refused batch writes nothing unless it asks for partial success (docs/google-behaviour.md, Cloud Logging writes)."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud.logging_v2 import types as lt

from devkit.emulated import clients
from emulator.server import Emulator
from tests.emulator.support import OWNER, PROJECT, advance, list_entries

AUDIT_LOGS = [
    "cloudaudit.googleapis.com%2Factivity",
    "cloudaudit.googleapis.com%2Fpolicy",
    "cloudaudit.googleapis.com%2Fdata_access",
    "cloudaudit.googleapis.com%2Fsystem_event",
    "cloudaudit.googleapis.com%2Faccess_transparency",
    "cloudaudit.googleapis.com%2factivity",  # %2f decodes to the same name
    "cloudaudit.googleapis.com/activity",  # the LOG_ID unencoded
]


def _entry(log_id: str, text: str) -> lt.LogEntry:
    return lt.LogEntry(
        log_name=f"projects/{PROJECT}/logs/{log_id}",
        resource={"type": "global", "labels": {"project_id": PROJECT}},
        text_payload=text,
    )


def _write(emu: Emulator, *entries: lt.LogEntry, partial_success: bool = False) -> Any:
    request = lt.WriteLogEntriesRequest(entries=list(entries), partial_success=partial_success)
    return clients(emu, email=OWNER).logging.write_log_entries(request=request, retry=None)


def _listed(emu: Emulator, text: str) -> list[str]:
    advance(emu, 60)  # past the ingestion lag
    return [e.log_name for e in list_entries(clients(emu, email=OWNER).logging, f'textPayload="{text}"')]


def _refusal(log_id: str) -> str:
    name = log_id.replace("%2f", "/").replace("%2F", "/")
    return (
        f"Log entries cannot be written to the log projects/{PROJECT}/logs/{log_id}: "
        f"{name.split('/')[0]} logs are written by Google Cloud only."
    )


@pytest.mark.parametrize("log_id", AUDIT_LOGS)
def test_writing_into_an_audit_log_is_refused_and_nothing_is_written(emulator: Emulator, log_id: str) -> None:
    with pytest.raises(exceptions.PermissionDenied) as caught:
        _write(emulator, _entry(log_id, "alice removed roles/aiplatform.user"))
    assert caught.value.message == f"entries[0]: {_refusal(log_id)}"
    assert _listed(emulator, "alice removed roles/aiplatform.user") == []


def test_a_default_log_name_in_an_audit_log_is_refused_too(emulator: Emulator) -> None:
    entry = lt.LogEntry(resource={"type": "global"}, text_payload="forged")
    request = lt.WriteLogEntriesRequest(
        log_name=f"projects/{PROJECT}/logs/cloudaudit.googleapis.com%2Factivity", entries=[entry]
    )
    with pytest.raises(exceptions.PermissionDenied):
        clients(emulator, email=OWNER).logging.write_log_entries(request=request, retry=None)
    assert _listed(emulator, "forged") == []


def test_other_log_names_are_written(emulator: Emulator) -> None:
    _write(emulator, _entry("canary", "hello"), _entry("cloudaudit-notes", "hello"))
    assert sorted(_listed(emulator, "hello")) == [
        f"projects/{PROJECT}/logs/canary",
        f"projects/{PROJECT}/logs/cloudaudit-notes",
    ]


def test_a_refused_batch_writes_none_of_its_entries(emulator: Emulator) -> None:
    with pytest.raises(exceptions.PermissionDenied) as caught:
        _write(emulator, _entry("canary", "batch"), _entry("cloudaudit.googleapis.com%2Factivity", "batch"))
    assert caught.value.message == f"entries[1]: {_refusal('cloudaudit.googleapis.com%2Factivity')}"
    assert _listed(emulator, "batch") == []


def test_partial_success_writes_the_valid_entries_and_names_the_refused_ones(emulator: Emulator) -> None:
    with pytest.raises(exceptions.PermissionDenied) as caught:
        _write(
            emulator,
            _entry("canary", "partial"),
            _entry("cloudaudit.googleapis.com%2Fpolicy", "partial"),
            partial_success=True,
        )
    partial = lt.WriteLogEntriesPartialErrors.pb()()
    packed = [d for d in caught.value.details if d.Is(partial.DESCRIPTOR)]  # api_core leaves it packed in an Any
    assert len(packed) == 1
    packed[0].Unpack(partial)
    errors = partial.log_entry_errors
    assert list(errors) == [1]
    assert errors[1].code == 7
    assert errors[1].message == f"entries[1]: {_refusal('cloudaudit.googleapis.com%2Fpolicy')}"
    assert _listed(emulator, "partial") == [f"projects/{PROJECT}/logs/canary"]
