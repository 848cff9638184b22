"""python -m deploy call: invoke the deployed canary now and print its verdict. The identity token is minted by
gcloud for the function's URL as the invoker account (`gcloud auth print-identity-token
--impersonate-service-account=… --audiences=URL`, as the README's runbook does): the caller needs
roles/iam.serviceAccountTokenCreator on that account, never run.invoker of their own."""

from __future__ import annotations

import os
import subprocess
from typing import TextIO
from urllib.parse import urlencode

import requests

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
    url = str((fn or {}).get("serviceConfig", {}).get("uri", ""))
    if not url.startswith("https://"):
        print(f"deploy call: {project}: no function {NAME} in {where.region} (python -m deploy apply first)", file=err)
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
