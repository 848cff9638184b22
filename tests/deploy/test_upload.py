"""What `gcloud functions deploy --source .` uploads, as the real gcloud computes it from .gcloudignore: exactly the
function's modules, the root main.py and requirements.txt, whatever else lies in the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy.reconcile import source_hash

ROOT = Path(__file__).resolve().parents[2]
STRAY = [".env", "key.json", "service-account.json", ".coverage", "notes.md", "function/.env", "function/creds.json"]


def _gcloud() -> str:
    path = shutil.which("gcloud")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("gcloud is not installed, and CI=true requires the gcloud tests to run")
        pytest.skip("gcloud is not installed")
    return path


def test_only_the_function_is_uploaded_whatever_lies_beside_it(tmp_path: Path) -> None:
    gcloud = _gcloud()
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(".venv", ".git", "*_cache", ".hypothesis"))
    for name in STRAY:
        (checkout / name).write_text("SECRET=1\n")
    (checkout / "function" / "__pycache__").mkdir(exist_ok=True)
    (checkout / "function" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    done = subprocess.run(
        [gcloud, "meta", "list-files-for-upload", str(checkout)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "CLOUDSDK_CONFIG": str(tmp_path / "gcloud-config"), "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"},
    )
    assert done.returncode == 0, done.stderr
    uploaded = set(done.stdout.split())
    expected = {"main.py", "requirements.txt"} | {f"function/{p.name}" for p in (ROOT / "function").glob("*.py")}
    assert uploaded == expected
    assert not uploaded & set(STRAY)


def test_the_source_label_covers_exactly_what_is_uploaded(tmp_path: Path) -> None:
    """The `canary-source` hash changes with an uploaded file, and not with anything that is not uploaded."""
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "function", checkout / "function", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("main.py", "requirements.txt"):
        shutil.copy(ROOT / name, checkout / name)
    before = source_hash(checkout)
    (checkout / "function" / "notes.txt").write_text("not uploaded\n")
    (checkout / ".env").write_text("SECRET=1\n")
    assert source_hash(checkout) == before
    (checkout / "function" / "config.py").write_text((ROOT / "function" / "config.py").read_text() + "\n# changed\n")
    assert source_hash(checkout) != before
