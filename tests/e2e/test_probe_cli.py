"""`python -m function probe` as a person runs it: a real process, the real client libraries, against the emulator
(pointed at it by Emulator.client_env alone). Exit statuses, text and JSON, and metrics written only when asked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from google.cloud import monitoring_v3

from devkit import canary, emulated
from emulator.core.scenario import shipped_names
from emulator.server import Emulator
from tests.e2e.conftest import PREFIX, WORKLOAD, assert_no_secrets

ROOT = Path(__file__).resolve().parents[2]


def _probe(emulator: Emulator, *args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANARY_")}
    # No wait for the denial's audit entry: these tests are about the command, not the evidence.
    env.update({**emulator.client_env(), **(extra or {})}, PYTHONPATH=str(ROOT), CANARY_AUDIT_LAG_BUDGET_SECONDS="0")
    done = subprocess.run(
        [sys.executable, "-m", "function", "probe", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert_no_secrets([done.stdout, done.stderr], emulator)
    return done


def _series(emulator: Emulator, metric: str) -> list[Any]:
    """The canary's series of `metric`, read with the real Monitoring client (none: the metric was never written)."""
    client = emulated.clients(emulator, "alice@example.com").metrics
    with emulator.world.lock:
        now = emulator.world.clock.now()
    interval = monitoring_v3.TimeInterval(
        {"start_time": {"seconds": int(now.timestamp()) - 3600}, "end_time": {"seconds": int(now.timestamp()) + 60}}
    )
    return list(
        client.list_time_series(
            name="projects/demo-proj", filter=f'metric.type = "{PREFIX}/{metric}"', interval=interval
        )
    )


def test_healthy_exits_0_with_json_when_not_a_terminal_and_writes_no_metrics() -> None:
    with Emulator("healthy", clock_mode="running") as emulator:
        done = _probe(emulator)
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)  # stdout is a pipe: JSON by default
        assert doc["verdict"] == "healthy"
        assert doc["principal"] == WORKLOAD
        assert doc["project"] == "demo-proj"
        assert doc["metrics"]["written"] is False
        assert "--write-metrics" in doc["metrics"]["skipped"]
        assert emulator.world.calls["google.monitoring.v3.MetricService.CreateTimeSeries"] == 0
        assert _series(emulator, "runs") == []


def test_denied_exits_2_with_the_cause_in_text_and_writes_metrics_when_asked() -> None:
    with Emulator("iam_denied", clock_mode="running") as emulator:
        done = _probe(emulator, "--format", "text", "--write-metrics", "--targets", "gemini-2.5-flash@us-central1")
        assert done.returncode == 2, done.stderr
        first = done.stdout.splitlines()[0]
        assert first.startswith("gemini-canary DENIED:")
        assert "iam_permission_denied" in first
        assert "aiplatform.endpoints.predict" in done.stdout
        assert (
            f"gcloud projects add-iam-policy-binding demo-proj --member=serviceAccount:{WORKLOAD} "
            "--role=roles/aiplatform.user" in done.stdout
        )
        assert emulator.world.calls["google.monitoring.v3.MetricService.CreateTimeSeries"] == 1
        [failures] = _series(emulator, "failures")
        assert failures.metric.labels["cause"] == "iam_permission_denied"
        assert failures.metric.labels["target"] == "gemini-2.5-flash@us-central1"
        assert failures.points[0].value.int64_value == 1


def test_the_canary_failing_exits_1_and_debug_shows_the_config() -> None:
    with Emulator("healthy", clock_mode="running") as emulator:
        # The runtime's project cannot be learned: the canary's own failure, not Gemini's.
        status, _ = emulated.admin(
            emulator, "POST", "faults", {"method": "metadata.project_id", "count": 50, "http_status": 500}
        )
        assert status == 201
        done = _probe(emulator, "--format", "json", "--debug", "--evidence", "off")
        assert done.returncode == 1, done.stderr
        doc = json.loads(done.stdout)
        assert doc["verdict"] == "error"
        assert "cannot learn which project to probe" in doc["error"]
        assert doc["config"]["evidence"] == []
        assert emulator.world.calls["google.cloud.aiplatform.v1.PredictionService.GenerateContent"] == 0


def test_bad_arguments_name_the_argument() -> None:
    with Emulator("healthy", clock_mode="running") as emulator:
        done = _probe(emulator, "--targets", "gemini")
        assert done.returncode == 64
        assert done.stdout == ""
        assert done.stderr.splitlines() == [
            "python -m function probe: error: --targets: 'gemini' is not MODEL@LOCATION (for example "
            "gemini-2.5-flash@us-central1 or gemini-2.5-pro@global; model ids are lower-case letters, digits, '.' "
            "and '-')"
        ]
        done = _probe(emulator, "--format", "yaml")
        assert done.returncode == 64
        assert "argument --format: invalid choice: 'yaml'" in done.stderr.splitlines()[-1]
        assert emulator.world.calls["google.cloud.aiplatform.v1.PredictionService.GenerateContent"] == 0


def test_make_canary_shows_what_a_person_needs_on_the_first_screen() -> None:
    make = shutil.which("make")
    assert make is not None, "make is a documented prerequisite"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANARY_")}
    done = subprocess.run(
        [make, "--no-print-directory", "canary", "SCENARIO=iam_denied"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr  # make passes the probe's status on as its own failure
    screen = done.stdout.splitlines()[:24]
    verdict = next(line for line in screen if line.startswith("gemini-canary "))
    assert verdict.startswith("gemini-canary DENIED:")
    assert "iam_permission_denied" in verdict
    shown = "\n".join(screen)
    assert "aiplatform.endpoints.predict" in shown
    assert f"--member=serviceAccount:{WORKLOAD} --role=roles/aiplatform.user" in shown
    assert "denied call recorded at" in done.stdout  # the audit entry was waited for and found


def test_the_readme_lists_every_shipped_scenario() -> None:
    readme = (ROOT / "README.md").read_text()
    listed = readme.split("<!-- scenarios:begin -->\n", 1)[1].split("<!-- scenarios:end -->", 1)[0]
    assert listed.splitlines() == canary.scenario_lines()
    assert len(listed.splitlines()) == len(shipped_names())


def test_a_probe_as_the_workload_impersonated_through_the_iam_credentials_api(tmp_path: Path) -> None:
    """An operator whose credentials are not the workload's probes as the workload: google.auth's impersonated
    credentials reach the emulator's IAM Credentials API over https through the HTTP port (a proxy and a CA bundle,
    as a corporate proxy would be set), and the run is the workload's."""
    operator = "deployer@demo-proj.iam.gserviceaccount.com"
    with Emulator("iam_denied", clock_mode="running") as emulator:
        with emulator.world.lock:
            emulator.world.workload = operator  # the metadata server's account: the operator's own ADC
            emulator.world.projects["demo-proj"].services.add("iamcredentials.googleapis.com")
        env_extra = {"HTTPS_PROXY": emulator.rest_url, "REQUESTS_CA_BUNDLE": str(emulator.ca_file)}
        env_extra["NO_PROXY"] = "127.0.0.1,localhost"  # gRPC to the emulator's own port goes direct
        denied = _probe(emulator, "--impersonate-service-account", WORKLOAD, "--format", "json", extra=env_extra)
        # the operator may not act as the workload yet: the probe itself failed (exit 1, not Gemini's 2), and one
        # line says whose permission is missing and the command that grants it
        assert denied.returncode == 1, denied.stdout + denied.stderr
        assert json.loads(denied.stdout)["targets"][0]["cause"] == "credentials"
        assert "iam.serviceAccounts.getAccessToken" in denied.stdout
        assert denied.stderr.startswith(f"python -m function probe: your credentials may not act as {WORKLOAD} ")
        assert f"gcloud iam service-accounts add-iam-policy-binding {WORKLOAD} " in denied.stderr
        assert denied.stderr.count("\n") == 1, denied.stderr
        status, body = emulated.admin(
            emulator,
            "PATCH",
            "world",
            {"projects": {"demo-proj": {"bindings": {"roles/iam.serviceAccountTokenCreator": [
                f"serviceAccount:{operator}"
            ]}}}},
        )  # fmt: skip
        assert status == 200, body
        done = _probe(emulator, "--impersonate-service-account", WORKLOAD, "--format", "json", extra=env_extra)
        assert done.returncode == 2, done.stdout + done.stderr
        doc = json.loads(done.stdout)
        assert doc["principal"] == WORKLOAD
        assert doc["verdict"] == "denied"


def test_no_credentials_on_the_machine_is_the_probe_failing_in_one_line(tmp_path: Path) -> None:
    """A laptop without `gcloud auth application-default login`: no metadata server, no ADC file. The probe says so
    in one line and exits 1; it does not print the workload-side fixes of the credentials cause."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env["GCE_METADATA_HOST"] = "127.0.0.1:9"  # nothing listens there: no metadata server, refused at once
    done = subprocess.run(
        [sys.executable, "-m", "function", "probe", "--project", "demo-proj", "--format", "text"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith("python -m function probe: no Application Default Credentials on this machine: ")
    assert "gcloud auth application-default login" in done.stderr
    assert "Traceback" not in done.stderr


def _job(emulator: Emulator, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANARY_")}
    env.update(emulator.client_env(), PYTHONPATH=str(ROOT), CANARY_AUDIT_LAG_BUDGET_SECONDS="0")
    env.update(CLOUD_RUN_JOB="gemini-canary", CLOUD_RUN_EXECUTION="gemini-canary-abc12", **env_extra)
    return subprocess.run(
        [sys.executable, "-m", "function", "job"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_a_job_execution_is_one_scheduled_run_with_the_verdict_as_its_exit_status() -> None:
    with Emulator("healthy", clock_mode="running") as emulator:
        done = _job(emulator)
        assert done.returncode == 0, done.stderr
        (line,) = done.stdout.splitlines()  # the one structured log line, nothing else
        entry = json.loads(line)
        assert entry["verdict"] == "healthy"
        assert entry["trigger"] == {"kind": "job", "job": "gemini-canary", "execution": "gemini-canary-abc12"}
        assert entry["metrics"]["written"] is True  # as a scheduled run: metrics are the job's output
        assert emulator.world.calls["google.monitoring.v3.MetricService.CreateTimeSeries"] == 1
    with Emulator("iam_denied", clock_mode="running") as emulator:
        done = _job(emulator)
        assert done.returncode == 2, done.stderr
        assert json.loads(done.stdout)["verdict"] == "denied"
    with Emulator("healthy", clock_mode="running") as emulator:
        done = _job(emulator, CANARY_TARGTS="gemini-2.5-pro@global")
        assert done.returncode == 1
        assert done.stderr.startswith("gemini-canary cannot start: CANARY_TARGTS")
        assert "CANARY_TARGETS" in done.stderr.splitlines()[0]
