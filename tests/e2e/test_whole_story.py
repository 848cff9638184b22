"""The whole chain, end to end, with the real gcloud, the real functions-framework and the real client libraries:
the deploy tool deploys the canary into the emulator, Cloud Scheduler runs it on the clock, the world breaks, Cloud
Monitoring evaluates the canary's four alert policies, and the notifications a person receives (e-mail in the outbox,
the webhook's posts) say what broke and how to fix it, once per incident, with a recovery notice when it closes.

The emulator's clock runs with real time while a run or a delivery happens and jumps over the idle minutes between
(devkit/story.py); every process reads that one clock, so nothing is accelerated inside a run.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit import fleet
from devkit.story import PROJECT, REGION, TARGETS, Notice, Story
from tests.prerequisites import need
from tests.shared import WORKLOAD

MEMBER = f"serviceAccount:{WORKLOAD}"
FIX = (
    f"gcloud projects add-iam-policy-binding {PROJECT} --member={MEMBER} --role=roles/aiplatform.user --condition=None"
)


def _pages(story: Story, policy: str, state: str = "open") -> list[Notice]:
    return [n for n in story.notices() if n.state == state and policy in (n.subject + n.policy)]


def _one_per_channel(notices: list[Notice]) -> dict[str, Notice]:
    counts = Counter((n.channel, n.incident) for n in notices)
    assert set(counts.values()) == {1}, counts  # exactly once per incident and channel
    return {n.channel: n for n in notices}


@pytest.fixture
def story(tmp_path: Path) -> Iterator[Story]:
    need("gcloud")
    with Story(tmp_path) as told:
        told.deploy()
        assert told.next_run().verdict == "healthy"
        yield told


def test_a_lasting_denial_pages_once_naming_the_fix_and_recovers_then_a_transient_cause_pages_degraded(
    story: Story,
) -> None:
    story.gemini_role(False)
    denied = story.next_run()
    assert denied.verdict == "denied"
    assert "roles/aiplatform.user removed by " in denied.summary  # the headline: the role, who and when

    pages = story.until(lambda: _pages(story, "Gemini access denied") or None, "the denied page")
    story.next_run()  # the denial lasts two more runs: no second page
    story.next_run()
    story.next_minutes(2)
    by_channel = _one_per_channel(_pages(story, "Gemini access denied"))
    assert set(by_channel) == {"email", "webhook"}
    assert len(pages) == 2
    for notice in by_channel.values():
        assert notice.subject == f"Gemini access denied: iam_permission_denied for {TARGETS} in {PROJECT}"
        assert f"project **{PROJECT}** cannot call **{TARGETS}**" in notice.body
        assert "cause **iam_permission_denied**, denied permission **aiplatform.endpoints.predict**" in notice.body
        assert f"**Fix:** `{FIX}`" in notice.body
    denied_incidents = [i for i in story.incidents() if i["group"]["metric"]["labels"].get("cause")]
    assert len(denied_incidents) == 1

    story.gemini_role(True)
    assert story.next_run().verdict == "healthy"
    closed = story.until(lambda: _pages(story, "Gemini access denied", "closed") or None, "the recovery notice")
    story.next_minutes(2)
    assert set(_one_per_channel(_pages(story, "Gemini access denied", "closed"))) == {"email", "webhook"}
    assert closed
    assert [i["state"] for i in story.incidents()] == ["CLOSED"]

    # then, in the same deployment (one deploy is most of a story's cost), a transient cause
    _degraded(story)


def _degraded(story: Story) -> None:
    """A transient cause on two consecutive runs pages "degraded"; one does not."""
    quota = {"quota": {MEMBER: 0}}
    story.patch_world(quota)
    assert story.next_run().line["targets"][0]["cause"] == "quota"
    story.next_minutes(2)
    assert _pages(story, "Gemini degraded") == []  # one transient failure is not a page
    assert story.next_run().line["targets"][0]["cause"] == "quota"
    pages = story.until(lambda: _pages(story, "Gemini degraded") or None, "the degraded page")
    notice = _one_per_channel(pages)["email"]
    assert notice.subject == f"Gemini degraded: quota for {TARGETS} in {PROJECT}"
    assert "quotas" in notice.body
    story.patch_world({"quota": {MEMBER: 1000}})
    assert story.next_run().verdict == "healthy"
    story.until(lambda: _pages(story, "Gemini degraded", "closed") or None, "the degraded recovery")


def test_a_paused_scheduler_makes_the_canary_silent_and_a_denial_without_metrics_pages_from_its_log_line(
    story: Story, tmp_path: Path
) -> None:
    env = story.emulator.gcloud_env(tmp_path / "deployer-cli", fleet.DEPLOYER)
    scheduler = ["gcloud", "scheduler", "jobs", "--location", REGION, "--project", PROJECT]
    pause = [*scheduler[:3], "pause", "gemini-canary", *scheduler[3:]]
    done = subprocess.run(pause, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    pages = story.until(lambda: _pages(story, "Gemini canary silent") or None, "the silent page", 30)
    notice = _one_per_channel(pages)["email"]
    assert notice.subject == f"Gemini canary silent in {PROJECT}"
    assert f"gcloud scheduler jobs describe gemini-canary --location={REGION} --project={PROJECT}" in notice.body
    resume = [*scheduler[:3], "resume", "gemini-canary", *scheduler[3:]]
    done = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert story.next_run().verdict == "healthy"
    story.until(lambda: _pages(story, "Gemini canary silent", "closed") or None, "the silent recovery")

    _log_line(story)


def _log_line(story: Story) -> None:
    """A denial the metrics cannot carry (the metric writer role gone too) pages from the log line, once an hour."""
    story.change("remove_binding", role="roles/monitoring.metricWriter", member=MEMBER)
    story.gemini_role(False)
    run = story.next_run()
    assert run.verdict == "denied"
    assert run.line["metrics"]["written"] is False
    pages = story.until(lambda: _pages(story, "logged a denial without metrics") or None, "the log-line page")
    story.next_run()  # another denied run within the hour: no second notification
    story.next_minutes(2)
    notice = _one_per_channel(_pages(story, "logged a denial without metrics"))["email"]
    assert len(pages) == 2
    assert notice.subject == f"Gemini canary logged a denial without metrics: iam_permission_denied in {PROJECT}"
    assert "roles/monitoring.metricWriter removed" in notice.body


def test_the_pubsub_mode_runs_from_scheduler_through_the_topic_as_a_cloudevent(tmp_path: Path) -> None:
    need("gcloud")
    with Story(tmp_path) as told:
        told.deploy("--pubsub")
        assert told.job()["pubsubTarget"]["topicName"] == f"projects/{PROJECT}/topics/gemini-canary"
        run = told.next_run()
        assert run.verdict == "healthy"
        assert run.line["trigger"]["kind"] == "pubsub"
        assert run.line["trigger"]["message_id"]
