"""The deploy tool as an operator lives with it, with the real gcloud against the emulator: help per command,
preflight refusals in one line before anything changes, the dry run's wording, progress lines on stderr, the JSON
summary, `status` of a healthy and a denied project and `call` of the served canary."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from deploy import __main__ as cli
from deploy.spec import INVOKER_ID
from devkit import fleet
from devkit.story import PROJECT, Story
from emulator.server import Emulator
from emulator.services.iamcredentials import API as IAMCREDENTIALS
from tests.emulator.rest_support import grant_on_account
from tests.prerequisites import need
from tests.shared import WORKLOAD

ROOT = Path(__file__).resolve().parents[2]
METADATA_PORT = int(os.environ["GCE_METADATA_HOST"].rsplit(":", 1)[1])
WHERE = ["--project", "demo-proj", "--region", "us-central1"]


def tool(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT), "GRPC_VERBOSITY": "NONE"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def help_of(*command: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        cli.main([*command, "--help"])
    assert done.value.code == 0
    return out.getvalue()


def test_each_command_has_its_own_help_with_examples_and_exit_codes() -> None:
    helps = {c: help_of(c) for c in ("apply", "teardown", "status", "call")}
    for command, text in helps.items():
        assert f"python -m deploy {command} --project" in text, command  # an example of this command
        assert "exit status:" in text, command
        assert "  2  bad input" in text, command
    for flag in ("--targets", "--schedule", "--notify-email", "--pubsub", "--no-notifications", "--grant-evidence"):
        assert flag not in helps["teardown"], flag
        assert flag in helps["apply"], flag
    assert "--service-account" not in helps["status"]
    assert "--dry-run" not in helps["status"]
    assert "--dry-run" in helps["teardown"]


def test_no_channel_is_refused_unless_asked() -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(["apply", *WHERE, "--service-account", WORKLOAD])
    assert code == 2
    assert err.getvalue().startswith("deploy: --notify-email: no notification channel: the alert policies would page")
    assert "--no-notifications" in err.getvalue()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(["apply", *WHERE, "--service-account", WORKLOAD, "--notify-email", "a@example.com",
                         "--no-notifications"])  # fmt: skip
    assert (code, err.getvalue().split(":")[1]) == (2, " --no-notifications")


def test_preflight_refusals_are_one_line_and_change_nothing(tmp_path: Path) -> None:
    need("gcloud")
    with Emulator("deploy_ready", metadata_port=METADATA_PORT) as emulator:
        env = emulator.gcloud_env(tmp_path, fleet.DEPLOYER)
        emulator.world.calls.clear()
        cases = {
            # The closest id is from `gcloud projects list`: the projects the deployer may get.
            "demo-prjo": (WORKLOAD, "project demo-prjo not found, or the deploying account cannot see it; the "
                                    "closest project id you can see: demo-proj"),
            "demo-proj": ("canary-workload@other-proj.iam.gserviceaccount.com",
                          "service account canary-workload@other-proj.iam.gserviceaccount.com is in project "
                          "other-proj, not demo-proj"),
        }  # fmt: skip
        for project, (account, expected) in cases.items():
            done = tool(env, "apply", "--project", project, "--region", "us-central1", "--service-account", account,
                        "--no-notifications", "--format", "json")  # fmt: skip
            assert done.returncode == 1, done.stderr
            [result] = json.loads(done.stdout)["projects"]
            assert result["status"] == "refused"
            assert result["error"].startswith(f"preflight: {expected}"), result["error"]
            assert f"{project}: refused: preflight: {expected}" in done.stderr
        missing = tool(env, "apply", *WHERE, "--service-account", "nobody-here@demo-proj.iam.gserviceaccount.com",
                       "--no-notifications")  # fmt: skip
        assert missing.returncode == 1
        assert (
            "preflight: service account nobody-here@demo-proj.iam.gserviceaccount.com does not exist in project "
            "demo-proj" in missing.stdout
        ), missing.stdout
        assert not [m for m in emulator.world.calls if m.rsplit(".", 1)[-1].startswith(("Create", "Set", "Enable"))]


def test_dry_run_says_would_and_names_no_temporary_file(tmp_path: Path) -> None:
    """Cloud Scheduler's API off: the dry run says which APIs it would enable and what it would create, as plain
    progress lines on stderr (not a terminal) with elapsed times; nothing changes."""
    need("gcloud")
    project = "demo-proj"
    with Emulator("deploy_ready", metadata_port=METADATA_PORT) as emulator:
        with emulator.world.lock:
            emulator.world.projects[project].services.discard("cloudscheduler.googleapis.com")
        env = emulator.gcloud_env(tmp_path / "home", fleet.DEPLOYER)
        emulator.world.calls.clear()
        done = tool(env, "apply", *WHERE, "--service-account", WORKLOAD, "--notify-email", "oncall@example.com",
                    "--dry-run")  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"== {project}: would create" in done.stdout
        assert "would enable APIs  cloudscheduler.googleapis.com" in done.stdout
        assert f"gcloud services enable cloudscheduler.googleapis.com --project={project}" in done.stdout
        assert "would create function" in done.stdout
        assert "--config-from-file=deploy/dashboard.json" in done.stdout
        # no temporary file is named (the checkout itself may live under /tmp: its path is the --source)
        assert tempfile.gettempdir() not in done.stdout.replace(str(ROOT), "SOURCE")
        assert ".json --" not in done.stdout.replace("dashboard.json --", "")
        assert "  created " not in done.stdout
        lines = done.stderr.splitlines()
        assert lines[0].startswith("[")
        assert f"s] {project}: apply (dry run): started" in lines[0]
        assert any(f"{project}: preflight: project found" in ln for ln in lines)
        assert lines[-1].endswith(f"{project}: would create"), lines[-1]
        assert "\x1b[" not in done.stderr  # plain lines: stderr is not a terminal
        assert not [m for m in emulator.world.calls if m.rsplit(".", 1)[-1].startswith(("Create", "Set", "Enable"))]


def test_status_and_call_of_a_healthy_then_a_denied_canary(tmp_path: Path) -> None:
    need("gcloud")
    with Story(tmp_path) as story:
        story.deploy()
        story.next_run()
        emu = story.emulator
        env = emu.gcloud_env(tmp_path / "operator", fleet.DEPLOYER)
        healthy = tool(env, "status", *WHERE, "--format", "json")
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        [doc] = json.loads(healthy.stdout)["projects"]
        assert (doc["state"], doc["function"], doc["current"], doc["job"], doc["verdict"]) == (
            "healthy", "ACTIVE", True, "ENABLED", "healthy"
        ), doc  # fmt: skip
        assert doc["policies"] == "4 of 4 enabled"
        assert doc["schedule"] == "*/3 * * * *"

        invoker = f"{INVOKER_ID}@{PROJECT}.iam.gserviceaccount.com"
        grant_on_account(emu, f"serviceAccount:{fleet.DEPLOYER}", "roles/iam.serviceAccountTokenCreator", invoker)
        with emu.world.lock:
            emu.world.projects[PROJECT].services.add(IAMCREDENTIALS)
        call_env = {**env, "https_proxy": emu.rest_url, "REQUESTS_CA_BUNDLE": str(emu.ca_file)}
        called = tool(call_env, "call", *WHERE)
        assert called.returncode == 0, called.stdout + called.stderr
        assert called.stdout.startswith(f"gemini-canary OK: 1/1 targets answered in project {PROJECT}"), called.stdout

        story.gemini_role(False)
        run = story.next_run()
        assert run.verdict == "denied"
        denied = tool(env, "status", *WHERE)
        assert denied.returncode == 1, denied.stdout + denied.stderr
        row = next(ln for ln in denied.stdout.splitlines() if ln.startswith(PROJECT))
        assert "failing" in row, denied.stdout
        assert "denied (iam_permission_denied)" in row, denied.stdout
        assert "Monitoring API v3 has no incidents list" in denied.stdout
        called = tool(call_env, "call", *WHERE)
        assert called.returncode == 1, called.stdout + called.stderr
        assert called.stdout.startswith("gemini-canary DENIED: iam_permission_denied"), called.stdout


def test_status_of_a_fleet_shows_what_is_missing_and_what_could_not_be_read(tmp_path: Path) -> None:
    """The first screen of `status` over a fleet file with one project never deployed to and one the deployer
    cannot see: each row says which, the unreadable one shows only its reason (never "function absent"), exit 1."""
    need("gcloud")
    with Emulator("deploy_ready") as emulator:
        env = emulator.gcloud_env(tmp_path / "operator", fleet.DEPLOYER)
        projects = tmp_path / "fleet.txt"
        projects.write_text("demo-proj\nghost-proj\n")
        done = tool(env, "status", "--projects-file", str(projects), "--region", "us-central1")
        assert done.returncode == 1, done.stdout + done.stderr
        screen = done.stdout.splitlines()[:24]
        assert screen[0].split() == ["project", "state", "last", "run", "verdict", "/", "cause"], screen
        rows = {line.split()[0]: i for i, line in enumerate(screen) if line and not line.startswith(" ")}
        demo, ghost = rows["demo-proj"], rows["ghost-proj"]
        assert screen[demo].split()[1:3] == ["not", "deployed"], screen
        assert screen[demo + 1].strip().startswith("function absent; scheduler absent"), screen
        assert screen[demo + 2].strip() == "! no function or Cloud Run job", screen
        assert screen[ghost].split()[1] == "unknown", screen
        ghost_block = screen[ghost + 1 : ghost + 3]
        assert ghost_block[0].strip().startswith("! "), screen
        assert "PERMISSION_DENIED" in ghost_block[0] or "not" in ghost_block[0], screen
        assert not any("function absent" in line for line in ghost_block), screen
        doc = json.loads(tool(env, "status", "--projects-file", str(projects), "--region", "us-central1",
                              "--format", "json").stdout)  # fmt: skip
        states = {p["project"]: (p["state"], p["function"], p["job"]) for p in doc["projects"]}
        assert states == {"demo-proj": ("not deployed", "absent", "absent"),
                          "ghost-proj": ("unknown", "unknown", "unknown")}, states  # fmt: skip


def test_two_projects_deploy_with_a_live_overview_on_a_terminal(tmp_path: Path) -> None:
    """The README's fleet deploy from a person's terminal (stderr a TTY, two projects at once): progress lines as
    each step ends, and under them rich's live table of every project's latest step, redrawn in place; the table
    left on the screen at the end shows both projects done."""
    need("gcloud")
    scenario = fleet.fleet_scenario(tmp_path / "fleet.yaml", 2)
    with Emulator(str(scenario)) as emulator:
        env = {**emulator.gcloud_env(tmp_path / "home", fleet.DEPLOYER), "PYTHONPATH": str(ROOT),
               "GRPC_VERBOSITY": "NONE", "TERM": "xterm-256color", "COLUMNS": "100"}  # fmt: skip
        projects = tmp_path / "fleet.txt"
        projects.write_text(f"{fleet.fleet_project(1)}\n{fleet.fleet_project(2)}\n")
        argv = [sys.executable, "-m", "deploy", "apply", "--projects-file", str(projects), "--region",
                "us-central1", "--service-account", "canary-workload@{project}.iam.gserviceaccount.com",
                "--parallel", "2", "--no-notifications"]  # fmt: skip
        terminal, tty_end = pty.openpty()
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=tty_end, text=True)
        os.close(tty_end)
        screen = bytearray()
        while True:  # read the terminal until the process has closed it
            ready, _, _ = select.select([terminal], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(terminal, 65536)
            except OSError:  # EIO: the other end is closed
                break
            if not chunk:
                break
            screen.extend(chunk)
        os.close(terminal)
        summary, _ = process.communicate(timeout=300)
    assert process.returncode == 0, summary
    raw = screen.decode("utf-8", "replace")
    assert "\x1b[1A\x1b[2K" in raw  # the live table is redrawn in place (cursor up, erase line)
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw).replace("\r", "")
    lines = plain.split("\n")
    for project in (fleet.fleet_project(1), fleet.fleet_project(2)):
        assert any(re.search(rf"\[ *[0-9.]+s\] {project}: preflight: project found", line) for line in lines), raw
        assert any(re.search(rf"\[ *[0-9.]+s\] {project}: function: created", line) for line in lines), raw
    # the table as it stays on the screen: after the last redraw of its header
    *_, last = re.finditer(r"project +state +step +at *\n", plain)
    final = [line.split()[:2] for line in plain[last.end() :].split("\n") if line.strip()]
    assert final == [[fleet.fleet_project(1), "created"], [fleet.fleet_project(2), "created"]], plain[-2000:]
    assert re.search(rf"^{fleet.fleet_project(2)} +created +16 ", summary, re.M), summary  # stdout: the summary


def test_ctrl_c_ends_a_deploy_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    need("gcloud")
    with Emulator("deploy_ready") as emu:
        env = {**emu.gcloud_env(tmp_path / "deployer", fleet.DEPLOYER), "PYTHONPATH": str(ROOT)}
        argv = [sys.executable, "-m", "deploy", "apply", *WHERE, "--service-account", WORKLOAD, "--no-notifications"]
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert process.stderr is not None
        first = process.stderr.readline()  # the first progress line: the deploy is under way
        assert "demo-proj" in first
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
        assert process.returncode == 130, err
        assert "Traceback" not in err
        interrupted = [line for line in err.splitlines() if line.startswith("deploy: interrupted; run the same")]
        assert len(interrupted) == 1, err
        assert err.rstrip().splitlines()[-1] == interrupted[0]  # and nothing after it: the deploy stopped
