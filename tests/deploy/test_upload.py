"""What `gcloud functions deploy --source .` uploads, as the real gcloud builds the zip from .gcloudignore: exactly
the function's modules, the root main.py and requirements.txt, whatever else lies in the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from deploy.reconcile import source_hash
from devkit.emulated import admin
from emulator.server import Emulator
from emulator.services.functions import FunctionStore
from tests.emulator.support import DEPLOYER, PROJECT
from tests.prerequisites import need
from tests.shared import WORKLOAD

ROOT = Path(__file__).resolve().parents[2]
STRAY = [".env", "key.json", "service-account.json", ".coverage", "notes.md", "function/.env", "function/creds.json"]
REGION = "us-central1"


def _gcloud() -> str:
    return need("gcloud")


def _checkout(tmp_path: Path) -> Path:
    """A copy of the repository with secret-looking strays beside the function, and compiled files."""
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(".venv", ".git", "*_cache", ".hypothesis"))
    for name in STRAY:
        (checkout / name).write_text("SECRET=1\n")
    (checkout / "function" / "__pycache__").mkdir(exist_ok=True)
    (checkout / "function" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    return checkout


def _expected() -> set[str]:
    return {"main.py", "requirements.txt"} | {f"function/{p.name}" for p in (ROOT / "function").glob("*.py")}


def test_the_deployed_zip_holds_only_the_function(tmp_path: Path) -> None:
    gcloud = _gcloud()
    checkout = _checkout(tmp_path)
    with Emulator("deploy_ready", metadata_port=0) as emu:
        project = emu.world.projects[PROJECT]
        builder = f"serviceAccount:{project.number}-compute@developer.gserviceaccount.com"
        grant = {"projects": {PROJECT: {"bindings": {"roles/cloudbuild.builds.builder": [builder]}}}}
        assert admin(emu, "PATCH", "world", grant)[0] == 200
        done = subprocess.run(
            [
                gcloud,
                "functions",
                "deploy",
                "gemini-canary",
                "--gen2",
                f"--region={REGION}",
                "--runtime=python311",
                "--source=.",
                "--entry-point=canary",
                "--trigger-http",
                "--no-allow-unauthenticated",
                f"--service-account={WORKLOAD}",
                "--set-build-env-vars=GOOGLE_FUNCTION_SOURCE=function/main.py",
                "--format=json",
            ],
            cwd=checkout,
            capture_output=True,
            text=True,
            env=emu.gcloud_env(tmp_path / "home", DEPLOYER),
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        record = project.store(FunctionStore).functions[
            f"projects/{PROJECT}/locations/{REGION}/functions/gemini-canary"
        ]
        uploaded = {f for f in record.source_files if not f.endswith("/")}
    assert uploaded == _expected()
    assert not uploaded & set(STRAY)


def test_gcloud_lists_the_same_files_for_upload(tmp_path: Path) -> None:
    done = subprocess.run(
        [_gcloud(), "meta", "list-files-for-upload", str(_checkout(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "CLOUDSDK_CONFIG": str(tmp_path / "gcloud-config"), "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) == _expected()


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
