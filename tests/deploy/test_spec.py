"""Deploy inputs: each bad one refused with a message naming the flag, before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deploy.__main__ import main
from deploy.spec import SpecError, make_spec, read_projects_file
from tests.shared import WORKLOAD

SA = WORKLOAD
BASE: dict[str, Any] = {"projects": ["demo-proj"], "region": "us-central1", "service_account": SA}

BAD = [
    ({"projects": []}, "--project: at least one project is required (or --projects-file)"),
    (
        {"projects": ["Demo_Proj"]},
        "--project: 'Demo_Proj' is not a project id (6-30 lower-case letters, digits, hyphens)",
    ),
    ({"projects": ["demo-proj", "demo-proj"]}, "--project: 'demo-proj' is given twice"),
    (
        {"projects": ["demo-proj; rm -rf /"]},
        "--project: 'demo-proj; rm -rf /' is not a project id (6-30 lower-case letters, digits, hyphens)",
    ),
    ({"region": "us central1"}, "--region: 'us central1' is not a region such as us-central1"),
    (
        {"service_account": "alice@example.com"},
        "--service-account: 'alice@example.com' is not a service account e-mail "
        "(NAME@PROJECT.iam.gserviceaccount.com; {project} stands for each project)",
    ),
    (
        {"service_account": "123456789012-compute@developer.gserviceaccount.com"},
        "--service-account: 123456789012-compute@developer.gserviceaccount.com is the default compute service account, "
        "which most projects grant roles/editor; the canary should run as the workload's own service account. Pass "
        "--force-default-service-account if the workload really runs as it.",
    ),
    (
        {"targets": ["gemini"]},
        "--targets: 'gemini' is not MODEL@LOCATION (for example gemini-2.5-flash@us-central1 or "
        "gemini-2.5-pro@global; model ids are lower-case letters, digits, '.' and '-')",
    ),
    ({"targets": ["gemini-2.5-pro@global", "gemini-2.5-pro@global"]}, "--targets: a target is listed twice"),
    (
        {"schedule": "every 5 minutes"},
        "--schedule: 'every 5 minutes' is not a unix-cron schedule of five fields (e.g. '*/5 * * * *')",
    ),
    ({"schedule": "*/0 * * * *"}, "--schedule: '*/0 * * * *': the minute step must be 1-59, not 0"),
    (
        {"channels": ["abc"]},
        "--notification-channel: 'abc' is not a notification channel id (digits, or its full resource name)",
    ),
    ({"notify_email": "not-an-email"}, "--notify-email: 'not-an-email' is not an e-mail address"),
    (
        {"time_zone": "Europe/Paris; x"},
        "--time-zone: 'Europe/Paris; x' is not a tz database name such as Etc/UTC or Europe/Paris",
    ),
    ({"parallel": 0}, "--parallel: 0 is out of range; allowed: 1 to 64"),
    ({"kind": "vm"}, "--kind: 'vm' is not a kind; allowed: function, job"),
    (
        {"kind": "job", "network": "Bad Net"},
        "--network: 'Bad Net' is not a VPC network name (or projects/HOST/global/networks/NAME)",
    ),
    (
        {"kind": "job", "network": "vpc; rm -rf /"},
        "--network: 'vpc; rm -rf /' is not a VPC network name (or projects/HOST/global/networks/NAME)",
    ),
    (
        {"kind": "job", "subnet": "projects/host-proj/regions/europe-west1/subnetworks/s1"},
        "--subnet: 'projects/host-proj/regions/europe-west1/subnetworks/s1' is not in us-central1; Direct VPC egress "
        "needs a subnet in the canary's region",
    ),
    (
        {"kind": "job", "network": "vpc", "vpc_egress": "all"},
        "--vpc-egress: 'all' is not allowed; allowed: all-traffic, private-ranges-only",
    ),
    (
        {"vpc_egress": "all-traffic"},
        "--vpc-egress: given without --network or --subnet; it says which traffic leaves through that network",
    ),
    (
        {"kind": "job", "pubsub": True},
        "--pubsub: a job kind is started by Scheduler through the Cloud Run Admin API; Pub/Sub triggers only the "
        "function kind",
    ),
]


def test_direct_vpc_egress_defaults_to_all_traffic_and_takes_shared_vpc_paths() -> None:
    spec = make_spec(**BASE, kind="job", network="projects/host-proj/global/networks/shared-vpc", subnet="s1")
    assert (spec.kind, spec.network, spec.subnet, spec.vpc_egress) == (
        "job", "projects/host-proj/global/networks/shared-vpc", "s1", "all-traffic"
    )  # fmt: skip
    quiet = make_spec(**BASE, kind="job", subnet="s1", vpc_egress="private-ranges-only")
    assert (quiet.network, quiet.vpc_egress) == (None, "private-ranges-only")
    assert make_spec(**BASE).vpc_egress is None  # no network: nothing about egress reaches gcloud


@pytest.mark.parametrize(
    ("override", "message"), BAD, ids=[m.split(":")[0] + "-" + str(i) for i, (_, m) in enumerate(BAD)]
)
def test_bad_input_is_refused_naming_the_flag(override: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as err:
        make_spec(**{**BASE, **override})
    assert str(err.value) == message


def test_default_compute_sa_allowed_only_when_forced() -> None:
    spec = make_spec(
        **{**BASE, "service_account": "123456789012-compute@developer.gserviceaccount.com", "force_default_sa": True}
    )
    assert spec.service_account.endswith("-compute@developer.gserviceaccount.com")


def test_projects_file(tmp_path: Path) -> None:
    path = tmp_path / "projects.txt"
    path.write_text("# fleet\nproj-one-1\n\nproj-two-2  # second\n")
    assert read_projects_file(str(path)) == ["proj-one-1", "proj-two-2"]
    path.write_text("proj-one-1\nBAD PROJECT\n")
    with pytest.raises(SpecError, match=r"^--projects-file: line 2: 'BAD PROJECT' is not a project id$"):
        read_projects_file(str(path))
    with pytest.raises(SpecError, match=r"^--projects-file: cannot read .*: No such file or directory$"):
        read_projects_file(str(tmp_path / "missing.txt"))


def test_cli_refuses_bad_input_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["apply", "--project", "demo-proj", "--region", "us-central1", "--service-account", "nobody"])
    assert code == 2
    assert capsys.readouterr().err == (
        "deploy: --service-account: 'nobody' is not a service account e-mail "
        "(NAME@PROJECT.iam.gserviceaccount.com; {project} stands for each project)\n"
    )


def test_there_is_no_way_to_make_the_function_public() -> None:
    from deploy.__main__ import parser

    flags = {a for action in parser()._actions for a in action.option_strings}
    assert not any("unauthenticated" in f or "public" in f or "allusers" in f.lower() for f in flags)


@pytest.mark.parametrize("field", ["projects", "region", "service_account", "notify_email", "time_zone"])
def test_a_trailing_newline_is_refused(field: str) -> None:
    value = {
        "projects": ["demo-proj\n"],
        "region": "us-central1\n",
        "service_account": f"{SA}\n",
        "notify_email": "a@example.com\n",
        "time_zone": "Etc/UTC\n",
    }[field]
    with pytest.raises(SpecError):
        make_spec(**{**BASE, field: value})
