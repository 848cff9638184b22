"""--shard K/N: every project in exactly one shard, chosen by its id alone; bad input named in one line."""

from __future__ import annotations

import pytest

from deploy import shard
from deploy.__main__ import main
from deploy.spec import SpecError

FLEET = [f"fleet-proj-{i:03d}" for i in range(1, 201)]


def test_the_shards_cover_the_fleet_once_whatever_its_order() -> None:
    parts = [shard.select(FLEET, (k, 10)) for k in range(1, 11)]
    assert sorted(p for part in parts for p in part) == sorted(FLEET)  # each project once
    assert all(5 <= len(part) <= 40 for part in parts), [len(p) for p in parts]  # spread, not all in one
    backwards = [shard.select(list(reversed(FLEET)), (k, 10)) for k in range(1, 11)]
    assert [sorted(p) for p in backwards] == [sorted(p) for p in parts]  # the order of the file does not matter
    grown = shard.select([*FLEET, "new-proj-001"], (3, 10))
    assert [p for p in grown if p != "new-proj-001"] == parts[2]  # adding a project moves no other
    assert shard.select(FLEET, None) == FLEET


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("3", "--shard: '3' is not K/N (for example 3/10: the third of ten shards)"),
        ("0/10", "--shard: shard 0 of 10 does not exist; allowed: 1 to 10"),
        ("11/10", "--shard: shard 11 of 10 does not exist; allowed: 1 to 10"),
        ("1/0", "--shard: 0 shards is out of range; allowed: 1 to 1000"),
        ("1/5000", "--shard: 5000 shards is out of range; allowed: 1 to 1000"),
        ("1/10\n", "--shard: '1/10\\n' is not K/N (for example 3/10: the third of ten shards)"),
        ("-1/10", "--shard: '-1/10' is not K/N (for example 3/10: the third of ten shards)"),
    ],
)
def test_a_bad_shard_is_refused_naming_the_flag(given: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        shard.parse(given)
    assert str(err.value) == message


def test_an_empty_shard_is_refused_before_anything_runs(capsys: pytest.CaptureFixture[str]) -> None:
    lonely = next(k for k in range(1, 11) if not shard.select(["demo-proj"], (k, 10)))
    code = main(["status", "--project", "demo-proj", "--region", "us-central1", "--shard", f"{lonely}/10"])
    assert code == 2
    assert capsys.readouterr().err == f"deploy: --shard: shard {lonely}/10 holds none of the 1 projects given\n"
