"""The time series one run writes: their labels as Cloud Monitoring takes them."""

from __future__ import annotations

from datetime import UTC, datetime

from function.causes import Cause
from function.metrics import LABEL_MAX, TargetSignal, series_for

RESOURCE = {"project_id": "demo-proj", "location": "us-central1", "namespace": "n", "job": "j", "task_id": "t"}
AT = datetime(2026, 11, 26, 9, tzinfo=UTC)


def test_a_label_longer_than_monitoring_takes_is_cut_with_a_mark() -> None:
    long_remedy = "gcloud projects add-iam-policy-binding demo-proj " + "x" * 2000
    signal = TargetSignal("gemini-2.5-flash@us-central1", Cause.IAM_PERMISSION_DENIED, 12.0, "p", long_remedy)
    failures = [
        s
        for s in series_for("custom.googleapis.com/c", "failing", [signal], RESOURCE, AT)
        if "remedy" in s["metric"]["labels"]
    ]
    [series] = failures
    remedy = series["metric"]["labels"]["remedy"]
    assert len(remedy) == LABEL_MAX == 1024
    assert remedy.endswith("…")
    assert remedy[:-1] == long_remedy[: LABEL_MAX - 1]


def test_a_label_of_exactly_the_limit_is_kept_whole() -> None:
    exact = "r" * LABEL_MAX
    signal = TargetSignal("m@l", Cause.IAM_PERMISSION_DENIED, 1.0, "p", exact)
    labels = [s["metric"]["labels"] for s in series_for("custom.googleapis.com/c", "failing", [signal], RESOURCE, AT)]
    assert {"target": "m@l", "cause": "iam_permission_denied", "permission": "p", "remedy": exact} in labels


def test_series_of_one_run() -> None:
    ok = TargetSignal("a@l", Cause.OK, 5.0, "", "")
    bad = TargetSignal("b@l", Cause.QUOTA, 7.0, "", "")
    series = series_for("custom.googleapis.com/c", "failing", [ok, bad], RESOURCE, AT)
    got = {
        (s["metric"]["type"].rsplit("/", 1)[1], tuple(sorted(s["metric"]["labels"].items()))): s["points"][0]["value"]
        for s in series
    }
    assert got == {
        ("runs", (("outcome", "failing"),)): {"int64_value": 1},
        ("success", (("target", "a@l"),)): {"int64_value": 1},
        ("success", (("target", "b@l"),)): {"int64_value": 0},
        ("latency", (("cause", "ok"), ("target", "a@l"))): {"double_value": 5.0},
        ("latency", (("cause", "quota"), ("target", "b@l"))): {"double_value": 7.0},
        ("failures", (("cause", "ok"), ("permission", "none"), ("remedy", "none"), ("target", "a@l"))): {
            "int64_value": 0
        },
        ("failures", (("cause", "quota"), ("permission", "none"), ("remedy", "none"), ("target", "b@l"))): {
            "int64_value": 1
        },
    }
