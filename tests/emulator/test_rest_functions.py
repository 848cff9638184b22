"""Cloud Functions v2 and Cloud Run v2 over REST: a deployment keeps its source summary and runs as its account; an
upload the emulator did not sign is refused; a service's invoker binding round-trips."""

from __future__ import annotations

import re
from collections.abc import Callable

from emulator.server import Emulator
from emulator.services.functions import FunctionStore
from emulator.services.run import RunStore
from tests.emulator.rest_support import (
    LOC,
    builder_ready,
    function_body,
    rest,
    upload_source,
)
from tests.emulator.support import PROJECT, raw_http
from tests.shared import WORKLOAD

# Cloud Functions and Cloud Run --------------------------------------------------------------------------------


def test_a_deployed_function_keeps_its_source_summary_and_runs_as_its_account(
    start_emulator: Callable[[str], Emulator],
) -> None:
    emu = start_emulator("deploy_ready")
    builder_ready(emu)
    source = upload_source(emu)
    status, operation = rest(emu, "POST", f"/v2/{LOC}/functions?functionId=gemini-canary", function_body(source))
    assert status == 200, operation
    assert operation["done"] is True
    assert operation["response"]["@type"] == "type.googleapis.com/google.cloud.functions.v2.Function"
    assert rest(emu, "GET", f"/v2/{operation['name']}")[1] == operation
    project = emu.world.projects[PROJECT]
    record = project.store(FunctionStore).functions[f"{LOC}/functions/gemini-canary"]
    assert record.source_files == ["main.py", "requirements.txt"]
    assert record.source_size > 0
    service_config = record.resource["serviceConfig"]
    assert service_config["serviceAccountEmail"] == WORKLOAD
    assert re.fullmatch(r"https://gemini-canary-[a-z0-9]{10}-uc\.a\.run\.app", service_config["uri"])
    run_service = project.store(RunStore).run_services[f"{LOC}/services/gemini-canary"]
    assert run_service.policy.bindings == []  # no public invoker, nor any other
    status, service = rest(emu, "GET", f"/v2/{LOC}/services/gemini-canary")
    assert (status, service["uri"], service["template"]["serviceAccount"]) == (200, service_config["uri"], WORKLOAD)


def test_a_function_from_an_unsigned_or_missing_upload_is_refused(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    status, answer = rest(emu, "POST", f"/v2/{LOC}/functions:generateUploadUrl", {})
    forged = answer["uploadUrl"].rsplit("Signature=", 1)[0] + "Signature=forged"
    assert raw_http(forged, "PUT", b"PK", {})[0] == 403
    status, answer = rest(
        emu, "POST", f"/v2/{LOC}/functions?functionId=gemini-canary", function_body(answer["storageSource"])
    )
    assert status == 400
    assert "upload a zip to the URL generateUploadUrl returned first" in answer["error"]["message"]


def test_unknown_field_in_a_json_api_body_is_refused(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    body = {"buildConfig": {"runtime": "python311", "sourceDir": "x"}}
    status, answer = rest(emu, "POST", f"/v2/{LOC}/functions?functionId=gemini-canary", body)
    assert (status, answer["error"]["message"]) == (
        400,
        "Invalid JSON payload received. Unknown name \"sourceDir\" at 'function.build_config': Cannot find field.",
    )


def test_run_invoker_binding_round_trip(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    builder_ready(emu)
    rest(emu, "POST", f"/v2/{LOC}/functions?functionId=gemini-canary", function_body(upload_source(emu)))
    resource = f"/v1/{LOC}/services/gemini-canary"
    status, policy = rest(emu, "GET", f"{resource}:getIamPolicy")
    binding = {"role": "roles/run.invoker", "members": [f"serviceAccount:{WORKLOAD}"]}
    status, updated = rest(emu, "POST", f"{resource}:setIamPolicy", {"policy": {**policy, "bindings": [binding]}})
    assert (status, updated["bindings"]) == (200, [binding])
    status, stale = rest(emu, "POST", f"{resource}:setIamPolicy", {"policy": {**policy, "bindings": []}})
    assert (status, stale["error"]["status"]) == (409, "ABORTED")  # the etag read first is no longer current
