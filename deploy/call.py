"""python -m deploy call: invoke the deployed canary now and print its verdict.

The function kind: the identity token is minted by gcloud for the function's URL as the invoker account (`gcloud auth
print-identity-token --impersonate-service-account=… --audiences=URL`, as the README's runbook does): the caller needs
roles/iam.serviceAccountTokenCreator on that account, never run.invoker of their own.

The job kind: `gcloud run jobs execute gemini-canary --wait` as the caller (run.jobs.run and run.executions.get on the
job: roles/run.developer, or roles/run.invoker with a viewer role), then the execution's own log line, read through
Cloud Logging, is the verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any, TextIO
from urllib.parse import urlencode

import requests

from .alerting import CANARY_LOGS
from .gcloud import Gcloud, GcloudError
from .spec import NAME, TIMEOUT_S, Where

# The canary's HTTP statuses (README, "HTTP API"): 200 healthy, 502 Gemini failing (the canary did its job),
# 500 the canary itself failed.
ANSWERED = {200: 0, 502: 1, 500: 1}


def run_call(where: Where, targets: list[str] | None, fmt: str, out: TextIO, err: TextIO) -> int:
    project = where.projects[0]
    gcloud = Gcloud(project)
    invoker = f"gemini-canary-invoker@{project}.iam.gserviceaccount.com"
    try:
        fn = gcloud.read("functions", "describe", NAME, f"--region={where.region}", "--gen2")
    except GcloudError as error:
        print(f"deploy call: {project}: {error.first_line}", file=err)
        return 3
    if fn is None:
        try:
            job = gcloud.read("run", "jobs", "describe", NAME, f"--region={where.region}")
        except GcloudError as error:
            print(f"deploy call: {project}: {error.first_line}", file=err)
            return 3
        if job is not None:
            if targets:
                print(
                    "deploy call: --targets: a job runs with its own targets (CANARY_TARGETS); leave it out", file=err
                )
                return 2
            return _call_job(gcloud, where, fmt, out, err)
    url = str((fn or {}).get("serviceConfig", {}).get("uri", ""))
    if not url.startswith("https://"):
        print(
            f"deploy call: {project}: no function or Cloud Run job {NAME} in {where.region} (python -m deploy apply "
            "first)",
            file=err,
        )
        return 3
    minted = subprocess.run(
        [
            "gcloud",
            "auth",
            "print-identity-token",
            f"--impersonate-service-account={invoker}",
            f"--audiences={url}",
            f"--project={project}",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"},
        timeout=120,
        check=False,
    )
    token = minted.stdout.strip().splitlines()[-1] if minted.stdout.strip() else ""
    if minted.returncode != 0 or not token:
        why = GcloudError(["auth", "print-identity-token"], minted.returncode, minted.stderr).first_line
        print(f"deploy call: {project}: no identity token as {invoker}: {why}", file=err)
        return 3
    query = {"format": fmt, **({"targets": ",".join(targets)} if targets else {})}
    try:
        answer = requests.post(
            f"{url}/?{urlencode(query)}",
            json={},
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT_S + 30,
        )
    except requests.RequestException as error:
        print(f"deploy call: {project}: {url} did not answer: {type(error).__name__}", file=err)
        return 3
    if answer.status_code not in ANSWERED:
        print(f"deploy call: {project}: {url} answered {answer.status_code}: {answer.text[:300]}", file=err)
        return 3
    print(answer.text.rstrip("\n"), file=out)
    return ANSWERED[answer.status_code]


LOG_WAIT_S = 60  # how long the execution's log line may take to be readable (Cloud Logging's ingestion delay)


def _call_job(gcloud: Gcloud, where: Where, fmt: str, out: TextIO, err: TextIO) -> int:
    """One execution of the job, waited for; its log line is the answer."""
    project = gcloud.project
    try:
        execution = gcloud.change("run", "jobs", "execute", NAME, f"--region={where.region}", "--wait")
    except GcloudError as error:
        # a task that exits non-zero (Gemini failing) fails the execution: gcloud says so, the log line says why
        if "failed" not in error.stderr.lower() or "execution" not in error.stderr.lower():
            print(f"deploy call: {project}: {error.first_line}", file=err)
            return 3
        execution = None
        name = _execution_named(error.stderr)
    else:
        name = str((execution or {}).get("metadata", {}).get("name", ""))
    if not name:
        print(f"deploy call: {project}: gcloud did not name the execution it started", file=err)
        return 3
    payload = _execution_line(gcloud, name)
    if payload is None:
        print(
            f"deploy call: {project}: execution {name} ended, but its log line was not readable within {LOG_WAIT_S} s "
            f"(gcloud run jobs executions describe {name} --region={where.region})",
            file=err,
        )
        return 3
    if fmt == "json":
        print(json.dumps(payload, indent=2), file=out)
    else:
        print(str(payload.get("message", "")), file=out)
        for target in payload.get("targets") or []:
            if not isinstance(target, dict) or target.get("cause") == "ok":
                continue
            fixes = [r for r in target.get("remedies") or [] if isinstance(r, dict) and r.get("command")]
            fix = f"  fix: {fixes[0]['command']}" if fixes else ""
            print(f"  {target.get('target')}  {target.get('cause')}{fix}", file=out)
        print(f"(execution {name})", file=out)
    return 0 if payload.get("verdict") == "healthy" else 1


def _execution_named(stderr: str) -> str:
    """The execution's name in gcloud's text for a failed execution: the command it suggests (`gcloud run jobs
    executions describe NAME`), else `Execution [NAME]`."""
    for line in stderr.splitlines():
        words = line.split()
        for i, word in enumerate(words[:-1]):
            if word == "describe" and i > 0 and words[i - 1] == "executions":
                return words[i + 1]
        start = line.find("Execution [")
        if start >= 0:
            return line[start + len("Execution [") :].split("]", 1)[0]
    return ""


def _execution_line(gcloud: Gcloud, execution: str) -> dict[str, Any] | None:
    """The canary's log line of one execution (a safe name: gcloud's, checked before it reaches the filter)."""
    if not execution.replace("-", "").isalnum() or len(execution) > 100:
        return None
    query = f'{CANARY_LOGS} AND labels."run.googleapis.com/execution_name"="{execution}" AND jsonPayload.verdict:*'
    end = time.monotonic() + LOG_WAIT_S
    while True:
        entries = gcloud.read("logging", "read", query, "--limit=1", "--freshness=1h") or []
        for entry in entries:
            payload = entry.get("jsonPayload") or {}
            if payload.get("verdict"):
                return dict(payload)
        if time.monotonic() >= end:
            return None
        time.sleep(2)
