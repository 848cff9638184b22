"""`make run`: the whole story on this machine, told as it happens.

The deploy tool deploys the canary with the real gcloud into a project of the local Google Cloud emulator; the
emulator serves it (the real functions-framework, as the workload's service account) and Cloud Scheduler runs it
every 3 minutes. A teammate removes the workload's Gemini role; the next scheduled run is denied; Cloud Monitoring's
alert policy opens an incident and the notification arrives by e-mail and webhook, printed as received. The role is
restored; the incident closes and the recovery notice arrives. The emulator's clock jumps over the idle minutes
(devkit/story.py says how every process keeps to it), so the story takes about a minute. Ends by itself.

Without gcloud, `python -m devkit.timeline` plays the canary alone against a timeline of causes.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from devkit.story import GEMINI_ROLE, ONCALL, PROJECT, SCHEDULE, TEAMMATE, Notice, Run, Story, notices_for

WIDTH = 100


def _clock(at: datetime) -> str:
    return at.strftime("%H:%M:%S")


def _say(at: datetime, text: str) -> None:
    print(f"[{_clock(at)}] {text}")


def _run(run: Run) -> None:
    _say(run.scheduled, f"Cloud Scheduler runs the canary → {run.verdict.upper()}")
    print(f"           {run.summary}")
    for target in run.line.get("targets", []):
        fix = next((r for r in target.get("remedies", []) if r.get("command")), None)
        if fix:  # printed whole, never wrapped: a pasted command must work
            print(f"           fix: {fix['command']}")
    metrics = run.line.get("metrics", {})
    print(f"           metrics {'written' if metrics.get('written') else 'not written'}")


def _email(outbox: Path, notice: Notice) -> None:
    """The e-mail as it landed in the outbox: its headers and body."""
    for path in sorted(outbox.glob("*")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["Subject"] == notice.subject:
            print(f"           e-mail to {message['To']} ({path.name}):")
            print(f"             Subject: {message['Subject']}")
            body = message.get_body(("plain",))
            text = body.get_content() if body is not None else ""
            for line in text.strip().splitlines():
                print(f"             {line}" if line.strip() else "")
            return
    print(f"           e-mail: {notice.subject}")


def _notified(story: Story, state: str, seen: set[tuple[str, str, str]]) -> list[Notice]:
    fresh = [n for n in notices_for(story.notices(), state) if (n.channel, n.incident, n.state) not in seen]
    seen.update((n.channel, n.incident, n.state) for n in fresh)
    return fresh


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the outbox and the deploy tool's gcloud home here")
    args = parser.parse_args(argv)
    if shutil.which("gcloud") is None:
        print(
            "make run: the whole story deploys the canary with the Google Cloud CLI, and `gcloud` is not on PATH.\n"
            "Install it (https://cloud.google.com/sdk/docs/install), or run `python -m devkit.timeline` for the "
            "canary alone against a timeline of causes.",
            file=sys.stderr,
        )
        return 2
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    home = args.keep or Path(tempfile.mkdtemp(prefix="gemini-canary-story-"))
    started = time.monotonic()
    print("Gemini access canary: the whole story, in a local Google Cloud emulator\n")
    try:
        with Story(home) as story:
            workload = story.emulator.world.workload
            _say(story.now, f"The deploy tool deploys the canary into {PROJECT} with the real gcloud …")
            story.deploy()
            _say(
                story.now,
                f"Deployed in {time.monotonic() - started:.0f} s: function gemini-canary running as {workload},",
            )
            print(f"           Cloud Scheduler job {SCHEDULE!r}, four alert policies notifying {ONCALL} and a webhook")
            print()
            _run(story.next_run())
            print()
            story.gemini_role(False)
            changed = story.now
            _say(changed, f"{TEAMMATE} removes {GEMINI_ROLE} from the workload's service account")
            print()
            _run(story.next_run())
            print()
            seen: set[tuple[str, str, str]] = set()
            opened = story.until(lambda: _notified(story, "open", seen) or None, "the page")
            paged = story.now
            _say(paged, f"The alert policy opened an incident; {len(opened)} notifications received:")
            for notice in opened:
                if notice.channel == "email":
                    _email(story.outbox, notice)
                else:
                    print(f"           webhook POST: incident {notice.incident} {notice.state}: {notice.subject}")
            print()
            story.gemini_role(True)
            fixed = story.now
            _say(fixed, f"{TEAMMATE} restores {GEMINI_ROLE}")
            print()
            _run(story.next_run())
            print()
            closed = story.until(lambda: _notified(story, "closed", seen) or None, "the recovery notice")
            _say(story.now, f"The incident closed; {len(closed)} recovery notices received:")
            for notice in closed:
                print(f"           {notice.channel}: {notice.subject} — closed")
            print()
            pages = len([n for n in story.notices() if n.state == "open" and n.channel == "email"])
            print(
                f"Time to detect (change → page): {_span(changed, paged)}; time to recover (fix → recovery notice): "
                f"{_span(fixed, story.now)} on the emulator's clock; {pages} page for the incident; "
                f"{time.monotonic() - started:.0f} s of real time."
            )
            return 0
    except RuntimeError as err:
        print(f"\nmake run: {err}", file=sys.stderr)
        return 1
    finally:
        if args.keep is None:
            shutil.rmtree(home, ignore_errors=True)


def _span(start: datetime, end: datetime) -> str:
    seconds = int((end - start).total_seconds())
    return f"{seconds // 60} min {seconds % 60:02d} s"


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("\nmake run: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
