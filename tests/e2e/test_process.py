"""The function as deployed: a real `functions-framework` process (gunicorn), loaded from function/main.py."""

from __future__ import annotations

import base64
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from devkit import emulated
from devkit.launcher import serve_function
from emulator.server import Emulator
from tests.e2e.conftest import METADATA_PORT, WORKLOAD, assert_no_secrets, metric_texts

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def functions_framework(emulator: Emulator, target: str, *extra: str) -> Iterator[tuple[int, Path]]:
    log = ROOT / ".cache" / f"ff-{target}-{os.getpid()}.log"
    log.parent.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANARY_")}
    env.update(emulator.client_env(), PYTHONPATH=str(ROOT), CANARY_AUDIT_LAG_BUDGET_SECONDS="0")
    try:
        with serve_function(env, log, target, *extra) as port:
            yield port, log
            assert_no_secrets([log.read_text(), *metric_texts(emulator)], emulator)
    finally:
        log.unlink(missing_ok=True)


def _http(url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw.strip().startswith(b"{") else raw.decode()
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def _log_lines(log: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in log.read_text().splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def _logged(log: Path, done: Callable[[list[dict[str, Any]]], bool], limit_s: float = 30) -> list[dict[str, Any]]:
    """The log's JSON lines once `done` holds for them. The canary writes and flushes a run's line before it answers,
    so this is normally at once; `limit_s` only bounds a line that never comes."""
    end = time.monotonic() + limit_s
    while True:
        lines = _log_lines(log)
        if done(lines):
            return lines
        if time.monotonic() > end:
            raise AssertionError(f"the log never got the lines waited for; it has: {lines}")
        time.sleep(0.01)


def _runs(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda lines: sum("run_id" in line for line in lines) >= count


def _read_by_server(port: int, conns: list[http.client.HTTPConnection], limit_s: float = 30) -> None:
    """Wait until the server has read everything these clients sent: the kernel's receive queue of each accepted
    socket is empty (Linux, /proc/net/tcp), so a gunicorn worker thread holds each, blocked on the rest of its body.
    (gthread accepts in its main thread and reads only in a pool thread.)"""
    local = f"0100007F:{port:04X}"
    remotes = {f"0100007F:{conn.sock.getsockname()[1]:04X}" for conn in conns}
    end = time.monotonic() + limit_s
    while True:
        read = set()
        for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = row.split()  # sl local_address rem_address st tx_queue:rx_queue ...
            if fields[1] == local and fields[2] in remotes and int(fields[4].split(":")[1], 16) == 0:
                read.add(fields[2])
        if read == remotes:
            return
        if time.monotonic() > end:
            raise AssertionError(f"the server did not read {len(remotes - read)} of the clients within {limit_s} s")
        time.sleep(0.01)


def test_http_target_in_a_real_functions_framework_process() -> None:
    with (
        Emulator("healthy", metadata_port=METADATA_PORT, clock_mode="running") as emulator,
        functions_framework(emulator, "canary") as (port, log),
    ):
        # The denied run first: it is the instance's first, so it writes its metrics (one point per series per 5 s:
        # the healthy run after it may be coalesced, which is not what this test is about).
        emulated.admin(emulator, "PATCH", "world", {"projects": {"demo-proj": {"billing": False}}})
        status, body = _http(
            f"http://127.0.0.1:{port}/",
            "POST",
            {},
            {
                "X-CloudScheduler": "true",
                "X-CloudScheduler-JobName": "gemini-canary",
                "X-CloudScheduler-ScheduleTime": "2026-11-26T09:05:00Z",
                "X-Cloud-Trace-Context": "0123456789abcdef0123456789abcdef/42;o=1",
            },
        )
        assert status == 502
        assert body["targets"][0]["cause"] == "billing_disabled"
        assert body["metrics"]["written"] is True

        emulated.admin(emulator, "PATCH", "world", {"projects": {"demo-proj": {"billing": True}}})
        status, body = _http(f"http://127.0.0.1:{port}/")
        assert status == 200
        assert body["verdict"] == "healthy"
        assert body["principal"] == WORKLOAD

        status, body = _http(f"http://127.0.0.1:{port}/?nope=1")
        assert status == 400

        lines = _logged(log, lambda lines: any("REJECTED" in line.get("message", "") for line in lines))
        verdicts = [line.get("verdict") for line in lines if "run_id" in line]
        assert verdicts == ["denied", "healthy"]
        denied = next(line for line in lines if line.get("verdict") == "denied")
        assert denied["severity"] == "ERROR"
        assert denied["logging.googleapis.com/trace"] == "projects/demo-proj/traces/0123456789abcdef0123456789abcdef"
        assert denied["logging.googleapis.com/spanId"] == "42"
        assert any(
            line.get("message", "").startswith("gemini-canary REJECTED: unknown query parameter") for line in lines
        )


def test_pubsub_target_in_a_real_functions_framework_process() -> None:
    with (
        Emulator("api_disabled", metadata_port=METADATA_PORT, clock_mode="running") as emulator,
        functions_framework(emulator, "canary_pubsub", "--signature-type", "cloudevent") as (port, log),
    ):
        data = base64.b64encode(b'{"targets": ["gemini-2.5-flash-lite@us-central1"]}').decode()
        headers = {
            "ce-id": "9876543210",
            "ce-specversion": "1.0",
            "ce-source": "//pubsub.googleapis.com/projects/demo-proj/topics/t",
            "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        }
        status, _ = _http(
            f"http://127.0.0.1:{port}/",
            "POST",
            {
                "message": {"data": data, "messageId": "9876543210"},
                "subscription": "projects/demo-proj/subscriptions/s",
            },
            headers,
        )
        assert status == 200
        [line] = [x for x in _logged(log, _runs(1)) if "run_id" in x]
        assert line["trigger"] == {"kind": "pubsub", "message_id": "9876543210"}
        assert line["targets"][0]["cause"] == "api_disabled"
        assert emulator.world.calls["google.monitoring.v3.MetricService.CreateTimeSeries"] == 1

        # A message the canary cannot use is acknowledged (a 2xx: Pub/Sub would redeliver anything else) with a
        # warning, and nothing is called.
        poison = base64.b64encode(b'{"targets": ["gemini@nowhere"]}').decode()
        status, _ = _http(
            f"http://127.0.0.1:{port}/",
            "POST",
            {
                "message": {"data": poison, "messageId": "9876543211"},
                "subscription": "projects/demo-proj/subscriptions/s",
            },
            {**headers, "ce-id": "9876543211"},
        )
        assert status == 200
        lines = _logged(log, lambda lines: any("rejected" in x for x in lines))
        [rejected] = [x for x in lines if "rejected" in x]
        assert rejected["severity"] == "WARNING"
        assert rejected["message"].startswith("gemini-canary REJECTED: targets: unknown target 'gemini@nowhere'")
        assert rejected["rejected"] == "pubsub"
        assert [x["run_id"] for x in lines if "run_id" in x] == [line["run_id"]]
        assert emulator.world.calls["google.cloud.aiplatform.v1.PredictionService.GenerateContent"] == 1
        assert emulator.world.calls["google.monitoring.v3.MetricService.CreateTimeSeries"] == 1


def test_fifty_simultaneous_triggers() -> None:
    """Every request answered and logged; Monitoring's one-point-per-5-s rule avoided by design and reported."""
    from concurrent.futures import ThreadPoolExecutor

    with (
        Emulator("healthy", metadata_port=METADATA_PORT, clock_mode="running") as emulator,
        functions_framework(emulator, "canary") as (port, log),
    ):
        headers = {"X-CloudScheduler": "true", "X-CloudScheduler-JobName": "gemini-canary"}
        with ThreadPoolExecutor(max_workers=50) as pool:
            answers = list(pool.map(lambda _: _http(f"http://127.0.0.1:{port}/", "POST", {}, headers), range(50)))
        assert [status for status, _ in answers] == [200] * 50
        bodies = [body for _, body in answers]
        assert len({b["run_id"] for b in bodies}) == 50
        written = [b for b in bodies if b["metrics"]["written"]]
        coalesced = [b for b in bodies if b["metrics"].get("skipped", "").startswith("coalesced:")]
        assert len(written) + len(coalesced) == 50
        assert not [b for b in bodies if b["metrics"].get("error")]  # never a rejected write
        calls = emulator.world.calls
        assert calls["google.cloud.aiplatform.v1.PredictionService.GenerateContent"] == 50
        assert calls["google.monitoring.v3.MetricService.CreateTimeSeries"] == len(written) >= 1
        logged = {line["run_id"] for line in _logged(log, _runs(50)) if "run_id" in line}
        assert logged == {b["run_id"] for b in bodies}


def _open(port: int, method: str, headers: dict[str, str], first_bytes: bytes) -> http.client.HTTPConnection:
    """A request whose headers promise a body that only begins to arrive: `first_bytes` of it, then nothing."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.putrequest(method, "/", skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders(first_bytes)
    return conn


def _answer(conn: http.client.HTTPConnection) -> tuple[int, Any]:
    response = conn.getresponse()
    return response.status, json.loads(response.read())


@pytest.mark.parametrize(
    ("headers", "first_bytes", "message"),
    [
        (
            {"Content-Type": "application/json", "Content-Length": str(300 * 1024 * 1024)},
            b'{"targets": [',
            "request body of 314572800 bytes; at most 4096 bytes",
        ),
        (
            {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            b"1400\r\n" + b" " * 0x1400 + b"\r\n",  # 5 KiB, and no last chunk
            "request body of 4097 bytes; at most 4096 bytes",
        ),
    ],
    ids=["declared-300-MB", "chunked-without-end"],
)
def test_a_body_over_the_limit_is_refused_without_reading_it(
    headers: dict[str, str], first_bytes: bytes, message: str
) -> None:
    """Answered while the rest of the body is still "on its way": the canary (and functions-framework after it) did
    not wait for it, so it never held 300 MB in memory either."""
    with (
        Emulator("healthy", metadata_port=METADATA_PORT, clock_mode="running") as emulator,
        functions_framework(emulator, "canary") as (port, _log),
    ):
        conn = _open(port, "POST", headers, first_bytes)
        try:
            assert _answer(conn) == (413, {"error": message})
        finally:
            conn.close()
        assert emulator.world.calls.get("google.cloud.aiplatform.v1.PredictionService.GenerateContent", 0) == 0


def test_slow_clients_cannot_starve_the_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    """As many clients as the server has threads each send a body's first bytes and stall: each is cut off after
    trigger.BODY_SECONDS with a 408, and a normal request behind them is answered."""
    monkeypatch.setenv("THREADS", "2")  # functions-framework's gunicorn: one worker, THREADS threads
    with (
        Emulator("healthy", metadata_port=METADATA_PORT, clock_mode="running") as emulator,
        functions_framework(emulator, "canary") as (port, _log),
    ):
        slow = [
            _open(port, "POST", {"Content-Type": "application/json", "Content-Length": "100"}, b'{"tar')
            for _ in range(2)
        ]
        try:
            _read_by_server(port, slow)  # both hold a thread before the normal request arrives
            status, body = _http(f"http://127.0.0.1:{port}/")
            assert status == 200, body
            assert body["verdict"] == "healthy"
            for conn in slow:
                assert _answer(conn) == (408, {"error": "the request body did not arrive within 5 s"})
        finally:
            for conn in slow:
                conn.close()
