"""Every input error of `python -m deploy` is one line, `deploy: --flag: …`, on stderr with exit status 2: never a
traceback, never argparse's usage block, whatever a flag holds (malformed, huge, empty, nested, non-UTF-8).

main() runs in-process with run_all replaced, so an accepted input reaches no gcloud; one test runs the real
process with bytes that are not UTF-8 on its command line."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from deploy import __main__ as cli
from deploy.spec import Spec
from tests.shared import WORKLOAD

ROOT = Path(__file__).resolve().parents[2]
SA = WORKLOAD
# A valid value of every flag that takes one.
VALID = {
    "--project": "demo-proj",
    "--region": "us-central1",
    "--service-account": SA,
    "--targets": "gemini-2.5-flash-lite@us-central1",
    "--schedule": "*/5 * * * *",
    "--time-zone": "Etc/UTC",
    "--notification-channel": "1234567",
    "--notify-email": "oncall@example.com",
    "--build-service-account": "builder@demo-proj.iam.gserviceaccount.com",
    "--parallel": "8",
}
REQUIRED = ("--project", "--region", "--service-account")
# Characters no valid value of any flag holds: appended to or put before a valid value, they make it bad.
JUNK = [";", "'", '"', "$(id)", "\x00", "\x1b[31m", "\udcff", "é", "\u202e", "/../", "\\", "\t|", "{project}{"]


def run(argv: list[str]) -> tuple[int, str, str, list[Spec]]:
    """main(argv) as the command line runs it: (exit status, stdout, stderr, specs that reached run_all)."""
    reached: list[Spec] = []
    out, err = io.StringIO(), io.StringIO()

    def run_all(spec: Spec, command: str, out: Any, **_: Any) -> list[Any]:
        reached.append(spec)
        return []

    with (
        mock.patch.object(cli, "run_all", run_all),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = cli.main(argv)
        except SystemExit as exit_:  # --help only
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue(), reached


def argv_with(flag: str, value: str, inline: bool) -> list[str]:
    args = ["apply"]
    for name in REQUIRED:
        if name != flag:
            args += [name, VALID[name]]
    args += [f"{flag}={value}"] if inline else [flag, value]
    if flag not in ("--notify-email", "--notification-channel"):
        args.append("--no-notifications")  # apply refuses to create policies that page nobody without it
    return args


def assert_refused(flag: str, code: int, out: str, err: str) -> None:
    assert "Traceback" not in err
    assert code == 2, (flag, out, err)
    assert out == ""
    assert err.endswith("\n"), err
    assert err.count("\n") == 1, err
    assert err.startswith(f"deploy: {flag}: "), err
    assert len(err) <= cli.MAX_MESSAGE + 1
    assert err[:-1].isprintable(), err


# The examples the issue names, and their neighbours: each raised a traceback (or printed argparse's usage) before.
@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--schedule", "*/5,70 * * * *"),  # ValueError: int('5,70')
        ("--schedule", "*/5,*/0 * * * *"),  # ValueError: int('5,*/0')
        ("--schedule", "0-59/0 * * * *"),  # ValueError: range() arg 3 must not be zero
        ("--schedule", "*/٥ * * * *"),  # an Arabic-Indic 5: \d matched it, Google would refuse it
        ("--parallel", "eight"),  # argparse: usage block, then the error
        ("--pubsub=yes", None),
        ("--no-such-flag", None),
    ],
)
def test_known_crashes_are_one_line(flag: str, value: str | None) -> None:
    argv = (
        argv_with(flag, value, inline=False)
        if value is not None
        else [*argv_with("--region", "us-central1", False), flag]
    )
    code, out, err, reached = run(argv)
    assert not reached
    assert_refused(flag.split("=", maxsplit=1)[0], code, out, err)


def test_a_list_with_a_stepped_item_is_a_schedule() -> None:
    """`*/5,10` is every five minutes (10 is one of them): accepted as such, not a ValueError."""
    code, _, err, [spec] = run(argv_with("--schedule", "*/5,10 * * * *", inline=False))
    assert (code, err) == (0, "")
    assert spec.schedule == "*/5,10 * * * *"
    assert spec.schedule_period_s() == 300


def test_missing_required_flags_are_one_line() -> None:
    code, out, err, _ = run(["apply", "--project", "demo-proj"])
    assert_refused("--region", code, out, err)
    assert err == "deploy: --region: required (also missing: --service-account)\n"


@pytest.mark.parametrize(
    "content",
    [
        b"demo-proj\n\xff\xfeother-proj\n",  # UnicodeDecodeError before
        b"\x00\x00\x00",
        b"demo-proj\x00other\n",
        b"# only \xe9 latin-1 in a comment\n",
        b"demo-proj\n" + b"x" * (17 * 2**20),  # larger than the limit
    ],
    ids=["invalid-utf8", "nuls", "nul-in-line", "latin1-comment", "huge"],
)
def test_a_bad_projects_file_is_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fleet.txt"
    path.write_bytes(content)
    code, out, err, reached = run(["apply", "--projects-file", str(path), "--region", "r1", "--service-account", SA])
    assert not reached
    assert_refused("--projects-file", code, out, err)


@pytest.mark.parametrize("path", ["", ".", "/nonexistent/x", "a" * 5000, "/dev/null/x"])
def test_a_bad_projects_file_path_is_one_line(path: str) -> None:
    code, out, err, _ = run(["apply", "--projects-file", path, "--region", "us-central1", "--service-account", SA])
    assert_refused("--projects-file", code, out, err)


def bad_values(flag: str) -> st.SearchStrategy[str]:
    valid = VALID[flag]
    return st.one_of(
        st.just(""),
        st.sampled_from(JUNK).map(lambda junk: valid + junk),
        st.sampled_from(JUNK).map(lambda junk: junk + valid),
        st.integers(1_000, 50_000).map(lambda n: valid * n),  # huge: the value repeated
        st.sampled_from(["@", ",", "/", ":", " "]).map(lambda sep: f"{valid}{sep}{valid}{sep}{valid};"),
        st.binary(min_size=1, max_size=40).map(lambda b: valid + b.decode("utf-8", "surrogateescape") + "\udc80"),
    )


@st.composite
def attacks(draw: st.DrawFn) -> tuple[str, str, bool]:
    flag = draw(st.sampled_from(sorted(VALID)))
    return flag, draw(bad_values(flag)), draw(st.booleans())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attacks())
def test_any_bad_value_of_any_flag_is_one_line_exit_2(attack: tuple[str, str, bool]) -> None:
    flag, value, inline = attack
    if value == "" and not inline and flag != "--targets":
        inline = True  # `--flag ''` and `--flag=` are the same to argparse
    code, out, err, reached = run(argv_with(flag, value, inline))
    assert not reached, (flag, value)
    assert_refused(flag, code, out, err)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(VALID)),
    st.one_of(st.text(max_size=60), st.binary(max_size=60).map(lambda b: b.decode("utf-8", "surrogateescape"))),
)
def test_any_value_is_accepted_or_one_line(flag: str, value: str) -> None:
    """Arbitrary text: accepted (and then well-formed), or refused in one line — never a traceback."""
    code, out, err, reached = run(argv_with(flag, value, inline=True))
    if reached:
        [spec] = reached
        assert code == 0
        assert err == ""
        assert 180 <= spec.schedule_period_s() <= 3600
        return
    assert_refused(flag, code, out, err)


@settings(max_examples=200, deadline=None)
@example(fields=["--"])  # Python 3.11's argparse reads --schedule=-- as an empty list
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["*", "*/5", "0-59/7", "5", "59", "60", "99", "10-5", "0-30/15", "*/0", "/5", "-", ""]),
            st.from_regex(r"\A[0-9*/,\-]{1,12}\Z"),
        ),
        min_size=1,
        max_size=7,
    )
)
def test_any_cron_like_schedule_is_accepted_evenly_or_one_line(fields: list[str]) -> None:
    code, out, err, reached = run(argv_with("--schedule", " ".join(fields), inline=True))
    if reached:
        assert 180 <= reached[0].schedule_period_s() <= 3600
        return
    assert_refused("--schedule", code, out, err)


@pytest.mark.parametrize(
    "args",
    [
        [b"--schedule", b"*/5 \xff * * *"],
        [b"--region", b"us-central1\xc3"],
        [b"--targets", b"gemini-2.5-pro@\xe9\xe9"],
        [b"--projects-file", b"/tmp/\xff\xfe"],
        [b"--\xff"],
    ],
)
def test_non_utf8_command_line_is_one_line(args: list[bytes]) -> None:
    """The real process, given bytes that are not UTF-8: Python hands them over as lone surrogates."""
    flag = args[0].decode("utf-8", "backslashreplace")
    base = [b"apply", b"--project", b"demo-proj", b"--service-account", SA.encode()]
    if flag != "--region":
        base += [b"--region", b"us-central1"]
    env: dict[str, Any] = {**os.environ, "PYTHONPATH": str(ROOT), "LC_ALL": "C.UTF-8"}
    done = subprocess.run(
        [sys.executable.encode(), b"-m", b"deploy", *base, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, err
    assert done.stdout == b""
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    expected = "--\\udcff" if flag.startswith("--\\x") else flag
    assert err.startswith(f"deploy: {expected}: "), err


def test_help_still_works() -> None:
    code, out, _, _ = run(["--help"])
    assert code == 0
    assert all(command in out for command in ("apply", "teardown", "status", "call", "exit status"))
    code, out, _, _ = run(["apply", "--help"])
    assert code == 0
    assert "--service-account" in out


@pytest.mark.parametrize("flag", [*REQUIRED, "--schedule", "--targets", "--time-zone", "--notify-email"])
def test_a_double_dash_value_is_refused_on_one_line(flag: str) -> None:
    """`--flag=--`: Python 3.11's argparse hands an empty list on where one value belongs."""
    code, out, err, reached = run(argv_with(flag, "--", inline=True))
    assert reached == []
    assert_refused(flag, code, out, err)
    assert err == f"deploy: {flag}: expected one argument\n"
