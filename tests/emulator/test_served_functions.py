"""Deployed functions are served: the uploaded source runs under the real functions-framework as the function's own
service account (its metadata server says so), its output becomes Cloud Run log entries, Cloud Run's ingress admits
only a Google-signed ID token for the function's URL from an invoker, a redeploy replaces the revision, a delete stops
it, and builds and starts fail the way Google reports them."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devkit.emulated import admin
from emulator.core.network import Outbound, Reply, Unreachable
from emulator.runtime import serving
from emulator.server import Emulator
from tests.emulator.rest_support import LOC, builder_ready, function_body, grant, rest, upload_source
from tests.emulator.support import DEPLOYER, PROJECT
from tests.shared import WORKLOAD

APP = """import datetime, json, os, sys
import functions_framework
import google.auth
from google.auth.transport.requests import Request

@functions_framework.http
def canary(request):
    credentials, project = google.auth.default()
    credentials.refresh(Request())
    line = {"severity": "WARNING", "message": "served", "logging.googleapis.com/labels": {"run": "1"}, "n": 7}
    print(json.dumps(line), flush=True)
    print("a plain line", file=sys.stderr, flush=True)
    return {
        "email": credentials.service_account_email,
        "project": project,
        "service": os.environ["K_SERVICE"],
        "revision": os.environ["K_REVISION"],
        "greeting": os.environ.get("GREETING", ""),
        "path": request.path,
        "now": datetime.datetime.now(datetime.UTC).isoformat(),
    }
"""
FILES = {"main.py": APP, "requirements.txt": "functions-framework\n"}
NAME = f"{LOC}/functions/served"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    emulator = Emulator("deploy_ready", serve_functions=True).start()
    builder_ready(emulator)
    grant(emulator, f"serviceAccount:{DEPLOYER}", "roles/run.invoker")
    try:
        yield emulator
    finally:
        emulator.stop()


def _finished(emu: Emulator, operation: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while not operation.get("done"):
        assert time.monotonic() < deadline, operation
        time.sleep(0.1)  # the deploy's operation, polled as gcloud polls it
        status, operation = rest(emu, "GET", f"/v2/{operation['name']}")
        assert status == 200, operation
    return operation


def _deploy(emu: Emulator, files: dict[str, str] = FILES, **service: Any) -> dict[str, Any]:
    body = function_body(upload_source(emu, files=files))
    body["serviceConfig"].update(service)
    status, operation = rest(emu, "POST", f"/v2/{LOC}/functions?functionId=served", body)
    assert status == 200, operation
    return operation


def _entries(emu: Emulator, wanted: Any, at_least: int = 1) -> list[dict[str, Any]]:
    """The log entries (written yet, visible or not) that `wanted` accepts, once there are `at_least` of them: a
    served process's lines arrive through its pipes a moment after it answered."""
    deadline = time.monotonic() + 30
    while True:
        with emu.world.lock:
            found = [r.entry for r in emu.world.logs if wanted(r.entry)]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.05)  # waiting for the reader threads; the loop ends on the condition


def _call(emu: Emulator, url: str, email: str | None = DEPLOYER, audience: str | None = None) -> Reply:
    headers = {} if email is None else {"Authorization": f"Bearer {emu.world.signer.id_token(email, audience or url)}"}
    return emu.world.network.send(Outbound("GET", url + "/hello?x=1", headers))


def test_the_source_runs_as_its_account_and_its_output_is_logged(emu: Emulator) -> None:
    operation = _deploy(emu)
    assert operation["done"] is False  # the revision is starting
    assert rest(emu, "GET", f"/v2/{NAME}")[1]["state"] == "DEPLOYING"
    operation = _finished(emu, operation)
    assert "error" not in operation, operation
    function = rest(emu, "GET", f"/v2/{NAME}")[1]
    assert function["state"] == operation["response"]["state"] == "ACTIVE"
    uri = function["serviceConfig"]["uri"]
    # the deploy's last Admin Activity entry, written when the revision started, shows the function as it then is
    (last,) = _entries(
        emu,
        lambda e: (
            e.get("protoPayload", {}).get("methodName", "").endswith("CreateFunction")
            and e.get("operation", {}).get("last")
        ),
    )
    assert last["protoPayload"]["response"]["state"] == "ACTIVE"

    reply = _call(emu, uri)
    assert reply.status == 200, reply.body
    answer = json.loads(reply.body)
    revision = function["serviceConfig"]["revision"]
    del answer["now"]
    assert answer == {
        "email": WORKLOAD,
        "project": PROJECT,
        "service": "served",
        "revision": revision,
        "greeting": "",
        "path": "/hello",
    }
    # the function URL reaches the same function, which sees the path after its name
    assert json.loads(_call(emu, function["url"]).body)["path"] == "/hello"

    mine = _entries(emu, lambda e: e.get("resource", {}).get("labels", {}).get("revision_name") == revision, 4)
    structured = [e for e in mine if e.get("jsonPayload", {}).get("message") == "served"]
    assert structured, mine
    first = structured[0]
    assert first["logName"] == f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout"
    assert first["severity"] == "WARNING"
    assert first["jsonPayload"] == {"message": "served", "n": 7}
    assert first["labels"]["run"] == "1"
    assert first["resource"]["type"] == "cloud_run_revision"
    assert first["resource"]["labels"]["service_name"] == "served"
    # functions-framework itself (LOG_EXECUTION_ID, as Cloud Functions sets it) writes a print to stderr as JSON
    # carrying the request's execution id; gunicorn's own lines stay plain text
    printed = _entries(emu, lambda e: e.get("jsonPayload", {}).get("message") == "a plain line")
    assert printed[0]["logName"].endswith("run.googleapis.com%2Fstderr")
    assert printed[0]["labels"]["execution_id"] == first["labels"]["execution_id"]
    plain = [e for e in mine if "Listening at: http://127.0.0.1:" in e.get("textPayload", "")]
    assert plain
    assert plain[0]["logName"].endswith("run.googleapis.com%2Fstderr")
    assert plain[0]["severity"] == "DEFAULT"
    requests = [e for e in mine if e["logName"].endswith("%2Frequests")]
    assert {e["httpRequest"]["status"] for e in requests} == {200}


def test_ingress_admits_only_an_invoker_with_a_token_for_the_url(emu: Emulator) -> None:
    _finished(emu, _deploy(emu))
    uri = rest(emu, "GET", f"/v2/{NAME}")[1]["serviceConfig"]["uri"]
    missing = _call(emu, uri, email=None)
    assert missing.status == 403
    assert b"Your client does not have permission to get URL <code>/hello</code> from this server." in missing.body
    wrong_audience = _call(emu, uri, audience="https://elsewhere.a.run.app")
    assert wrong_audience.status == 401
    assert wrong_audience.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    forged = emu.world.network.send(Outbound("GET", uri, {"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."}))
    assert forged.status == 401
    not_invoker = _call(emu, uri, email="stranger@example.com")
    assert not_invoker.status == 403
    assert _call(emu, uri).status == 200
    # a token without an email claim (generateIdToken without includeEmail) names its account by `sub`
    bare = emu.world.signer.id_token(DEPLOYER, uri, include_email=False)
    assert emu.world.network.send(Outbound("GET", uri, {"Authorization": f"Bearer {bare}"})).status == 200
    stranger = emu.world.signer.id_token("stranger@example.com", uri, include_email=False)
    assert emu.world.network.send(Outbound("GET", uri, {"Authorization": f"Bearer {stranger}"})).status == 403
    # an access token is not an ID token
    with emu.world.lock:
        access, _ = emu.world.mint_token(DEPLOYER)
    assert emu.world.network.send(Outbound("GET", uri, {"Authorization": f"Bearer {access}"})).status == 401


def test_the_url_is_reachable_through_the_http_port_as_a_proxy(emu: Emulator) -> None:
    _finished(emu, _deploy(emu))
    uri = rest(emu, "GET", f"/v2/{NAME}")[1]["serviceConfig"]["uri"]
    plain = "http://" + uri.removeprefix("https://")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": emu.rest_url}))
    token = emu.world.signer.id_token(DEPLOYER, uri)
    request = urllib.request.Request(plain + "/via-proxy", headers={"Authorization": f"Bearer {token}"})
    with opener.open(request, timeout=30) as response:
        assert json.loads(response.read())["path"] == "/via-proxy"


def test_a_redeploy_replaces_the_revision_and_a_delete_stops_it(emu: Emulator) -> None:
    _finished(emu, _deploy(emu))
    function = rest(emu, "GET", f"/v2/{NAME}")[1]
    uri, first = function["serviceConfig"]["uri"], function["serviceConfig"]["revision"]
    body = function_body(upload_source(emu, files=FILES))
    body["serviceConfig"]["environmentVariables"] = {"GREETING": "hello"}
    body["name"] = NAME
    status, operation = rest(emu, "PATCH", f"/v2/{NAME}", body)
    assert status == 200, operation
    assert "error" not in _finished(emu, operation)
    answer = json.loads(_call(emu, uri).body)
    assert answer["greeting"] == "hello"
    assert answer["revision"] != first
    status, _ = rest(emu, "DELETE", f"/v2/{NAME}")
    assert status == 200
    emu.ticker.run_once()
    with pytest.raises(Unreachable) as gone:
        _call(emu, uri)
    assert gone.value.reason == "dns"


@pytest.mark.parametrize(
    ("files", "entry", "message"),
    [
        ({"app.py": APP}, "canary", "missing main.py and GOOGLE_FUNCTION_SOURCE not specified"),
        (
            {**FILES, "requirements.txt": "functions-framework==0.0.1\n"},
            "canary",
            "No matching distribution found for functions-framework==0.0.1",
        ),
        ({**FILES, "requirements.txt": "not a requirement ((\n"}, "canary", "Invalid requirement"),
    ],
)
def test_a_build_fails_as_the_buildpack_says(emu: Emulator, files: dict[str, str], entry: str, message: str) -> None:
    operation = _deploy(emu, files)
    assert operation["done"] is True
    assert operation["error"]["code"] == 3
    assert operation["error"]["message"].startswith("Build failed with status: FAILURE and message: ")
    assert message in operation["error"]["message"]
    assert rest(emu, "GET", f"/v2/{NAME}")[1]["state"] == "FAILED"


def test_a_missing_entry_point_fails_the_health_check_and_the_trace_is_logged(emu: Emulator) -> None:
    body = function_body(upload_source(emu, files=FILES))
    body["buildConfig"]["entryPoint"] = "nowhere"
    status, operation = rest(emu, "POST", f"/v2/{LOC}/functions?functionId=served", body)
    assert status == 200, operation
    operation = _finished(emu, operation)
    assert operation["error"]["code"] == 3
    assert "Container Healthcheck failed" in operation["error"]["message"]
    assert rest(emu, "GET", f"/v2/{NAME}")[1]["state"] == "FAILED"
    assert _entries(emu, lambda e: "nowhere" in e.get("textPayload", ""))


EVENT_APP = """import base64, json
import functions_framework

@functions_framework.cloud_event
def on_message(event):
    data = base64.b64decode(event.data["message"]["data"]).decode()
    print(json.dumps({"severity": "INFO", "message": "got " + data, "type": event["type"]}), flush=True)
"""


def test_an_event_triggered_function_gets_each_message_on_its_topic_as_a_cloudevent(emu: Emulator) -> None:
    status, topic = rest(emu, "PUT", f"/v1/projects/{PROJECT}/topics/canary-topic", {})
    assert status == 200, topic
    trigger_account = WORKLOAD
    grant(emu, f"serviceAccount:{trigger_account}", "roles/run.invoker")
    body = function_body(upload_source(emu, files={"main.py": EVENT_APP, "requirements.txt": ""}))
    body["buildConfig"]["entryPoint"] = "on_message"
    body["eventTrigger"] = {
        "eventType": "google.cloud.pubsub.topic.v1.messagePublished",
        "pubsubTopic": topic["name"],
        "serviceAccountEmail": trigger_account,
    }
    status, operation = rest(emu, "POST", f"/v2/{LOC}/functions?functionId=served", body)
    assert status == 200, operation
    assert "error" not in _finished(emu, operation)
    function = rest(emu, "GET", f"/v2/{NAME}")[1]
    assert function["eventTrigger"]["trigger"].startswith(f"projects/{PROJECT}/locations/us-central1/triggers/served-")
    status, published = rest(emu, "POST", f"/v1/{topic['name']}:publish", {"messages": [{"data": "aGVsbG8="}]})
    assert status == 200, published
    emu.ticker.run_once()  # push delivery happens on the clock
    got = _entries(emu, lambda e: e.get("jsonPayload", {}).get("message") == "got hello")
    assert got[0]["jsonPayload"]["type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    status, _ = rest(emu, "DELETE", f"/v2/{NAME}")
    assert status == 200
    status, subscriptions = rest(emu, "GET", f"/v1/projects/{PROJECT}/subscriptions")
    assert status == 200
    assert subscriptions.get("subscriptions", []) == []


def test_a_served_function_reads_the_emulator_clock(emu: Emulator) -> None:
    _finished(emu, _deploy(emu))
    uri = rest(emu, "GET", f"/v2/{NAME}")[1]["serviceConfig"]["uri"]

    def seen() -> datetime:
        return datetime.fromisoformat(json.loads(_call(emu, uri).body)["now"])

    assert admin(emu, "POST", "clock", {"mode": "running"})[0] == 200
    assert admin(emu, "POST", "clock", {"set": "2031-03-04T05:06:07Z"})[0] == 200
    first = seen()
    assert timedelta(0) <= first - datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC) < timedelta(minutes=5)
    assert admin(emu, "POST", "clock", {"advance_seconds": 86400})[0] == 200
    assert timedelta(days=1) <= seen() - first < timedelta(days=1, minutes=5)
    status, body = admin(emu, "POST", "clock", {"mode": "running", "rate": 0})
    assert status == 400
    assert "rate" in body["error"]


def test_an_instance_that_dies_is_replaced_by_a_new_one(emu: Emulator) -> None:
    _finished(emu, _deploy(emu))
    uri = rest(emu, "GET", f"/v2/{NAME}")[1]["serviceConfig"]["uri"]
    assert emu.runtime is not None
    served = emu.runtime.served[NAME].process
    assert served is not None
    served.stop(kill=True)
    emu.ticker.run_once()
    assert _call(emu, uri).status == 200


def _zip(entries: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return archive.getvalue()


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (_zip({"../escape.py": b"x"}), "points outside the source folder"),
        (_zip({"/abs.py": b"x"}), "points outside the source folder"),
        (_zip({"main.py": b"x"}, links=("link",)), "is a symbolic link"),
        (_zip({"big.bin": b"\0" * 4097}), "unpacks to more than"),  # MAX_UNPACKED lowered to 4096 below
        (b"PK\x03\x04 not a zip", "not a zip archive"),
    ],
)
def test_a_hostile_source_zip_is_refused_before_anything_is_written_outside(
    tmp_path: Path, data: bytes, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serving, "MAX_UNPACKED", 4096)
    into = tmp_path / "source"
    into.mkdir()
    with pytest.raises(serving.SourceError, match=said):
        serving.unpack(data, into)
    assert not (tmp_path / "escape.py").exists()


def test_a_served_process_ends_when_the_emulator_is_killed(tmp_path: Path) -> None:
    """A stand-in emulator starts a Python process the way the runtime does (the clock hook on its path, its pid in
    EMULATOR_PID) and is killed: the child ends itself instead of serving on as an orphan."""
    marker = tmp_path / "child.pid"
    child = f"import os, pathlib, time; pathlib.Path({str(marker)!r}).write_text(str(os.getpid())); time.sleep(120)"
    parent = (
        "import os, subprocess, sys, time; "
        f"env = dict(os.environ, PYTHONPATH={str(serving.CLOCKSHIM)!r}, EMULATOR_PID=str(os.getpid())); "
        f"subprocess.Popen([sys.executable, '-c', {child!r}], env=env, start_new_session=True); "
        "time.sleep(120)"
    )
    stand_in = subprocess.Popen([sys.executable, "-c", parent])
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)  # until the child has started; ends on the condition
    pid = int(marker.read_text())
    stand_in.kill()
    stand_in.wait()
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline + 30, "the child outlived the emulator"
        time.sleep(0.1)  # the child's watch checks once a second; ends on the condition
