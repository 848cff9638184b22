"""The floor of a warm run: what any canary pays here before its own code, measured the same way.

Served by functions-framework like the others, it makes the two calls of a healthy run (GenerateContent,
CreateTimeSeries) as bare gRPC calls: requests serialized once, the same ADC token plugin as the GAPIC channels
(google.auth.transport.grpc), no GAPIC wrappers, no proto-plus, no result, no log line. Its overhead (wall time minus
the emulator's handler time) is the framework, the HTTP hop and the two round trips to the emulator's gRPC server;
a canary's overhead above it is its own code's. Benchmarks only; needs CANARY_EMULATOR_GRPC.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import flask
import functions_framework
import google.auth
import google.auth.transport.grpc
import google.auth.transport.requests
import grpc
from google.cloud.aiplatform_v1.types import content, prediction_service
from google.cloud.monitoring_v3.types import metric_service

_calls: dict[str, Any] = {}


def _setup() -> dict[str, Any]:
    if not _calls:
        credentials, project = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        channel = google.auth.transport.grpc.secure_authorized_channel(
            credentials,
            google.auth.transport.requests.Request(),
            os.environ["CANARY_EMULATOR_GRPC"],
            ssl_credentials=grpc.local_channel_credentials(),
        )
        model = f"projects/{project}/locations/us-central1/publishers/google/models/gemini-2.5-flash-lite"
        generate = prediction_service.GenerateContentRequest(
            model=model,
            contents=[content.Content(role="user", parts=[content.Part(text="Reply with the single word OK.")])],
            generation_config=content.GenerationConfig(max_output_tokens=1, temperature=0.0),
        )
        now = int(time.time())
        series = metric_service.CreateTimeSeriesRequest(
            name=f"projects/{project}",
            time_series=[
                {
                    "metric": {"type": "custom.googleapis.com/gemini_canary/runs", "labels": {"outcome": "healthy"}},
                    "resource": {"type": "global", "labels": {"project_id": project}},
                    "points": [{"interval": {"end_time": {"seconds": now}}, "value": {"int64_value": 1}}],
                }
            ],
        )
        _calls.update(
            generate=(
                channel.unary_unary("/google.cloud.aiplatform.v1.PredictionService/GenerateContent"),
                prediction_service.GenerateContentRequest.serialize(generate),
            ),
            series=(
                channel.unary_unary("/google.monitoring.v3.MetricService/CreateTimeSeries"),
                metric_service.CreateTimeSeriesRequest.serialize(series),
            ),
        )
    return _calls


@functions_framework.http
def canary(request: flask.Request) -> flask.Response:
    started = time.perf_counter()
    for call, payload in _setup().values():
        # A repeated point is refused as too frequent, as the canaries' are: the round trip is made all the same.
        with contextlib.suppress(grpc.RpcError):
            call(payload, timeout=10)
    return flask.Response(f'{{"duration_ms": {(time.perf_counter() - started) * 1000:.1f}}}', 200)
