"""The request trigger's edges and the run harness's less travelled paths, pinned exactly.

trigger.py: the body's size and time bounds (a real socket pair stands in for the client's connection; the time
limit is made tiny so the cut-off fires at once, never slept for), and the exact words of its refusals. run.py: one
run in process against the emulator (as in test_mutants.py) where the metadata server fails, several targets are
probed, a probe outlives the run, or evidence is shared between runs of one instance.
"""

from __future__ import annotations

import io
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devkit.emulated import admin
from emulator.server import Emulator
from function import run as run_module
from function import trigger
from function.causes import Cause
from function.config import Config, Target
from function.evidence import LIST_CALLS_PER_MINUTE
from function.metrics import MetricsReport
from function.probe import Outcome
from function.recorder import Deadline
from function.run import Instance, Result, execute
from function.trigger import MAX_BODY, BadRequest, Trigger, _Cutoff, _parse_error, read_body

# --- function/trigger.py: reading the body -------------------------------------------------------------------------


def _refusal(call: Callable[..., Any], *args: Any) -> tuple[int, str]:
    with pytest.raises(BadRequest) as caught:
        call(*args)
    return caught.value.status, caught.value.message


class Trickle(io.BytesIO):
    """A body that arrives a few bytes per read, as a chunked request's reader hands it over."""

    def __init__(self, data: bytes, per_read: int) -> None:
        super().__init__(data)
        self.per_read = per_read

    def read(self, size: int | None = -1) -> bytes:
        wanted = self.per_read if size is None or size < 0 else min(size, self.per_read)
        return super().read(wanted)


def test_a_body_in_many_pieces_is_joined_as_sent() -> None:
    data = b'{"targets": ["gemini-2.5-pro@global"]}'
    assert read_body(Trickle(data, 3), len(data)) == data
    assert read_body(Trickle(data, 3), None) == data


@pytest.mark.parametrize("per_read", [1024, 1000, 4095])
def test_a_chunked_body_is_read_to_one_byte_past_the_limit_whatever_its_pieces(per_read: int) -> None:
    """Reading stops at MAX_BODY + 1 bytes (enough to refuse it): never asking for more, also when the pieces add
    up to exactly MAX_BODY on the way."""
    stream = Trickle(b"x" * 10 * MAX_BODY, per_read)
    assert read_body(stream, None) == b"x" * (MAX_BODY + 1)
    assert stream.tell() == MAX_BODY + 1


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[socket.socket, socket.socket]]:
    """(client, server) ends of a connection; the body's time limit is a millisecond, so the cut-off fires as soon
    as its timer thread runs. The server end gives up after 5 s, so a cut-off that never comes fails the test (400
    instead of 408) rather than hanging it."""
    monkeypatch.setattr(trigger, "BODY_SECONDS", 0.001)
    client, server = socket.socketpair()
    server.settimeout(5.0)
    try:
        yield client, server
    finally:
        client.close()
        server.close()


@pytest.mark.parametrize("declared", [100, None], ids=["content-length", "chunked"])
def test_a_body_that_stops_arriving_is_408_when_its_time_is_up(
    connection: tuple[socket.socket, socket.socket], declared: int | None
) -> None:
    client, server = connection
    client.sendall(b'{"tar')  # and nothing more, the connection left open
    assert _refusal(read_body, server.makefile("rb"), declared, server) == (
        408,
        "the request body did not arrive within 0.001 s",
    )


def test_a_body_complete_when_its_time_is_up_is_kept(connection: tuple[socket.socket, socket.socket]) -> None:
    """All the declared bytes came, the client then kept the connection open: the body is whole, not late."""
    client, server = connection
    client.sendall(b'{"targets": []}')
    assert read_body(server.makefile("rb"), 15, server) == b'{"targets": []}'


def test_the_body_time_limit_never_keeps_the_process_alive() -> None:
    """While the body is being read its timer is a daemon thread, and it is gone once the body was read."""
    client, server = socket.socketpair()
    seen: list[bool] = []

    class Watched(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            seen.extend(t.daemon for t in _cutoff_timers())
            return super().read(size)

    with client, server:
        assert read_body(Watched(b"{}"), 2, server) == b"{}"
    assert seen == [True, True]  # two reads: the body, then its end
    assert [t for t in _cutoff_timers() if not t.finished.is_set()] == []


def _cutoff_timers() -> list[threading.Timer]:
    """The timers of the body's time limit now running in this process."""
    return [
        t
        for t in threading.enumerate()
        if isinstance(t, threading.Timer) and isinstance(getattr(t.function, "__self__", None), _Cutoff)
    ]


def test_a_cutoff_that_fires_after_the_body_was_read_leaves_the_connection_alone() -> None:
    """The timer may reach its deadline just as the body ends: once the read is over, firing does nothing."""
    client, server = socket.socketpair()
    with client, server:
        cutoff = _Cutoff(server, 60.0)
        with cutoff:
            pass
        cutoff._fire()
        assert cutoff.fired is False
        client.sendall(b"more")
        assert server.recv(4) == b"more"  # the read side is still open


def test_a_cutoff_that_fires_shuts_only_the_read_side() -> None:
    client, server = socket.socketpair()
    with client, server:
        cutoff = _Cutoff(server, 60.0)
        with cutoff:
            cutoff._fire()
            assert cutoff.fired is True
            assert server.recv(4) == b""  # end of file for the reader
            server.sendall(b"408")  # the response can still be written
            assert client.recv(3) == b"408"


def test_a_cutoff_on_a_connection_already_gone_does_not_raise() -> None:
    client, server = socket.socketpair()
    client.close()
    server.close()
    cutoff = _Cutoff(server, 60.0)
    with cutoff:
        cutoff._fire()
        assert cutoff.fired is True


def test_without_a_socket_nothing_is_cut_off() -> None:
    cutoff = _Cutoff(None, 60.0)
    with cutoff:
        cutoff._fire()
        assert cutoff.fired is False


# --- function/trigger.py: the words of a refusal ------------------------------------------------------------------


def test_a_refusal_is_its_message_as_an_exception() -> None:
    error = BadRequest(413, "request body of 5000 bytes; at most 4096 bytes")
    assert str(error) == "request body of 5000 bytes; at most 4096 bytes"
    assert (error.status, error.headers) == (413, {})


def test_what_the_json_parser_could_not_do_is_said_plainly() -> None:
    assert _parse_error(MemoryError()) == "too large to parse"
    assert _parse_error(RecursionError("maximum recursion depth exceeded")) == "nested too deeply"


# --- function/run.py -----------------------------------------------------------------------------------------------

LITE = Target.parse("gemini-2.5-flash-lite@us-central1")
FLASH = Target.parse("gemini-2.5-flash@us-central1")
GENERATE = "google.cloud.aiplatform.v1.PredictionService.GenerateContent"
NOT_FOUND = {"count": 10, "http_status": 404}  # not retried by google.auth: the lookup fails at once
PROJECT_UNKNOWN = (
    "cannot learn which project to probe: the runtime's metadata server's project/project-id answered HTTP 404: "
    "'injected failure'. This is the runtime's metadata server failing, not Gemini: the next run asks again "
    "(outside Google Cloud, where there is no metadata server, set CANARY_PROJECT)"
)
NO_PROJECT_SKIPPED = (
    "not attempted: the canary does not know its project, so it has nowhere to write (this run is in its log line; "
    "the silent alert fires if no run can write for three schedule periods)"
)
CREDENTIALS_SKIPPED = (
    "not attempted: the canary's own credentials failed (cause credentials); the log line carries the result"
)


@pytest.fixture
def world() -> Iterator[Callable[..., Emulator]]:
    """world(scenario, faults...) → a started emulator on a running clock, on this process's metadata port."""
    port = int(os.environ["GCE_METADATA_HOST"].rsplit(":", 1)[1])
    started: list[Emulator] = []

    def start(scenario: str = "healthy", *faults: dict[str, Any]) -> Emulator:
        emulator = Emulator(scenario, metadata_port=port, clock_mode="running").start()
        started.append(emulator)
        status, body = admin(emulator, "PATCH", "world", {"logging": {"ingestion_lag_seconds": 0}})
        assert status == 200, body
        for fault in faults:
            status, body = admin(emulator, "POST", "faults", fault)
            assert status == 201, body
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


def _config(emulator: Emulator, **kwargs: Any) -> Config:
    return Config(emulator=emulator.grpc.address, audit_lag_budget_s=0.0, **kwargs)


def _execute(config: Config, instance: Instance | None = None) -> Result:
    return execute(instance or Instance(config), Trigger("http"), list(config.targets))


def test_a_project_the_metadata_server_will_not_tell_is_the_canarys_own_error(world: Callable[..., Emulator]) -> None:
    emulator = world("healthy", {"method": "metadata.project_id", **NOT_FOUND})
    result = _execute(_config(emulator))
    assert (result.verdict, result.error, result.project, result.outcomes) == ("error", PROJECT_UNKNOWN, None, [])
    assert result.metrics == MetricsReport(skipped=NO_PROJECT_SKIPPED)


def test_no_credentials_and_no_project_is_the_canarys_own_error(world: Callable[..., Emulator]) -> None:
    emulator = world(
        "healthy", {"method": "metadata.token", **NOT_FOUND}, {"method": "metadata.project_id", **NOT_FOUND}
    )
    result = _execute(_config(emulator))
    assert (result.verdict, result.error, result.project, result.outcomes) == ("error", PROJECT_UNKNOWN, None, [])
    assert result.metrics == MetricsReport(skipped=NO_PROJECT_SKIPPED)


def test_no_credentials_reports_every_target_and_the_project_looked_up_after(world: Callable[..., Emulator]) -> None:
    """google.auth could not learn the project; the harness asks the metadata server once more and names it."""
    emulator = world(
        "healthy",
        {"method": "metadata.token", **NOT_FOUND},
        {"method": "metadata.project_id", "count": 1, "http_status": 404},
    )
    config = _config(emulator, targets=(LITE, FLASH))
    result = _execute(config)
    assert result.error is None
    assert result.project == "demo-proj"
    assert [(o.target, o.cause, o.latency_ms) for o in result.outcomes] == [
        (LITE, Cause.CREDENTIALS, 0.0),
        (FLASH, Cause.CREDENTIALS, 0.0),
    ]
    assert result.metrics == MetricsReport(skipped=CREDENTIALS_SKIPPED)


def test_every_target_is_probed(world: Callable[..., Emulator]) -> None:
    config = _config(world("healthy"), targets=(LITE, FLASH))
    result = _execute(config)
    assert [(o.target, o.cause) for o in result.outcomes] == [(LITE, Cause.OK), (FLASH, Cause.OK)]


def test_a_probe_that_outlives_the_run_is_a_deadline_failure(
    world: Callable[..., Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe still running a second after the run's work deadline is reported as that deadline passing, with the
    whole deadline as its latency; the other targets' outcomes are kept."""
    release = threading.Event()

    def stuck(target: Target, *args: Any) -> Outcome:
        if target == FLASH:
            release.wait(10.0)  # released when the test ends; if nobody waits for it, the outcome is wrong
            return Outcome(target, Cause.OK, 1.0)
        return Outcome(target, Cause.OK, 2.0)

    monkeypatch.setattr(run_module, "probe", stuck)
    config = _config(world("healthy"), targets=(LITE, FLASH), deadline_s=0.05)
    try:
        result = _execute(config)
    finally:
        release.set()
    assert [(o.target, o.cause, o.latency_ms) for o in result.outcomes] == [
        (LITE, Cause.OK, 2.0),
        (FLASH, Cause.DEADLINE, 50.0),
    ]
    failure = result.outcomes[1].failure
    assert failure is not None
    assert (failure.cause, failure.message, failure.error_type) == (
        Cause.DEADLINE,
        "the run's deadline passed",
        "TimeoutError",
    )


def test_the_failures_series_names_the_first_remedy(world: Callable[..., Emulator]) -> None:
    emulator = world("iam_denied")
    result = _execute(_config(emulator))
    [failing] = result.outcomes
    first = result.remedies[str(failing.target)][0]
    assert first.command == (
        "gcloud projects add-iam-policy-binding demo-proj "
        "--member=serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com "
        "--role=roles/aiplatform.user --condition=None"
    )
    [labels] = [s["metric"]["labels"] for s in result.metrics.time_series if s["metric"]["type"].endswith("/failures")]
    assert labels == {
        "target": "gemini-2.5-flash-lite@us-central1",
        "cause": "iam_permission_denied",
        "permission": "aiplatform.endpoints.predict",
        "remedy": first.command,
    }


def test_evidence_is_shared_only_between_runs_with_the_same_failures(world: Callable[..., Emulator]) -> None:
    """Once the instance's ListLogEntries allowance runs low, a run with the same failures reuses the last run's
    evidence (and says whose); a run with other failures does not."""
    emulator = world("iam_denied")
    config = _config(emulator)
    instance = Instance(config)
    first, second, third = (_execute(config, instance) for _ in range(3))
    assert [r.evidence.shared_with for r in (first, second, third)] == [None, None, second.run_id]
    status, body = admin(
        emulator, "POST", "faults", {"method": GENERATE, "count": 1, "status": {"code": 14, "message": "down"}}
    )
    assert status == 201, body
    other = _execute(config, instance)
    assert [o.cause for o in other.outcomes] == [Cause.UNAVAILABLE]
    assert other.evidence.shared_with is None
    # no permission was named; the first remedy is a link
    assert [s["metric"]["labels"] for s in other.metrics.time_series if s["metric"]["type"].endswith("/failures")] == [
        {
            "target": "gemini-2.5-flash-lite@us-central1",
            "cause": "unavailable",
            "permission": "none",
            "remedy": "https://status.cloud.google.com/",
        }
    ]


class _Clock:
    """perf_counter for the harness: each reading a quarter second after the last."""

    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        self.now += 0.25
        return self.now


def test_the_run_duration_is_in_milliseconds(world: Callable[..., Emulator], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_module, "time", _Clock())
    result = _execute(_config(world("healthy")))
    assert result.duration_ms == 250.0


def test_a_fault_of_the_canary_after_probing_is_written_as_an_error_run(
    world: Callable[..., Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> list[Any]:
        raise RuntimeError("remedies failed")

    monkeypatch.setattr(run_module, "remedies", broken)
    result = _execute(_config(world("iam_denied")))
    assert (result.error, result.project, result.verdict) == ("RuntimeError: remedies failed", "demo-proj", "error")
    assert result.metrics.written is True
    assert [s["metric"]["labels"] for s in result.metrics.time_series] == [{"outcome": "error"}]


def test_a_fault_of_the_canary_before_it_knows_its_project_writes_nothing(
    world: Callable[..., Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = Instance(_config(world("healthy")))

    def broken(timeout: float) -> str:
        raise ValueError("prepare failed")

    monkeypatch.setattr(instance.clients, "prepare", broken)
    result = execute(instance, Trigger("http"), list(instance.config.targets))
    assert (result.error, result.project, result.outcomes) == ("ValueError: prepare failed", None, [])
    assert result.metrics == MetricsReport()


class _Left(Deadline):
    def __init__(self, left: float) -> None:
        super().__init__(30.0)
        self.left = left

    def remaining(self) -> float:
        return self.left


@pytest.mark.parametrize(("left", "timeout"), [(4.0, 1.0), (1.0, 0.25), (100.0, 2.0), (0.0, 0.05), (0.1, 0.05)])
def test_a_metadata_lookup_takes_a_quarter_of_what_is_left(left: float, timeout: float) -> None:
    """A quarter of the run's remaining time, at least 50 ms and at most METADATA_TIMEOUT_S (2 s)."""
    assert run_module._metadata_timeout(_Left(left)) == timeout


def test_evidence_is_not_shared_between_runs_refused_by_different_constraints(world: Callable[..., Emulator]) -> None:
    emulator = world("org_policy")
    config = _config(emulator)
    instance = Instance(config)
    runs = [_execute(config, instance)]
    while runs[-1].evidence.shared_with is None and len(runs) <= LIST_CALLS_PER_MINUTE:  # until the allowance runs low
        runs.append(_execute(config, instance))
    assert [o.cause for r in runs for o in r.outcomes] == [Cause.ORG_POLICY] * len(runs)
    assert runs[-1].evidence.shared_with == runs[-2].run_id
    refused = {
        "code": 9,
        "message": "Request is disallowed by organization policy constraint constraints/gcp.resourceLocations",
    }
    status, body = admin(emulator, "POST", "faults", {"method": GENERATE, "count": 1, "status": refused})
    assert status == 201, body
    other = _execute(config, instance)
    assert [o.cause for o in other.outcomes] == [Cause.ORG_POLICY]
    assert other.evidence.shared_with is None


def test_a_healthy_target_is_counted_with_no_permission_and_no_remedy(world: Callable[..., Emulator]) -> None:
    result = _execute(_config(world("healthy")))
    [labels] = [s["metric"]["labels"] for s in result.metrics.time_series if s["metric"]["type"].endswith("/failures")]
    assert labels == {
        "target": "gemini-2.5-flash-lite@us-central1",
        "cause": "ok",
        "permission": "none",
        "remedy": "none",
    }
