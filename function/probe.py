"""One Gemini call per target: a fixed tiny prompt, max_output_tokens=1, as the runtime's own identity.

A probe only probes: the harness (run.py) owns the deadline, the timing, the metrics and the log line.
The prompt and the model's answer are never logged or returned; only the finish reason and token counts are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .causes import Cause, Failure, classify
from .clients import Clients
from .config import Target
from .recorder import Deadline, Recorder

PROMPT = "Reply with the single word OK."


@dataclass
class Outcome:
    target: Target
    cause: Cause
    latency_ms: float
    failure: Failure | None = None
    finish_reason: str | None = None
    tokens: int | None = None
    model_version: str | None = None

    @property
    def ok(self) -> bool:
        return self.cause == Cause.OK

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "target": str(self.target),
            "cause": str(self.cause),
            "latency_ms": round(self.latency_ms, 1),
        }
        if self.failure is not None:
            doc["error"] = self.failure.to_json()
        if self.finish_reason is not None:
            doc["finish_reason"] = self.finish_reason
            doc["total_tokens"] = self.tokens
            doc["model_version"] = self.model_version
        return doc


def request_for(target: Target, project: str) -> Any:
    from google.cloud.aiplatform_v1.types import content, prediction_service

    return prediction_service.GenerateContentRequest(
        model=target.resource(project),
        contents=[content.Content(role="user", parts=[content.Part(text=PROMPT)])],
        generation_config=content.GenerationConfig(max_output_tokens=1, temperature=0.0),
    )


def probe(target: Target, project: str, clients: Clients, deadline: Deadline, recorder: Recorder) -> Outcome:
    started = time.perf_counter()
    try:
        client = clients.prediction(target.location)
        response = recorder.call(
            f"aiplatform.GenerateContent({target})",
            lambda: client.generate_content(
                request=request_for(target, project), timeout=deadline.timeout(), retry=None
            ),
        )
    except Exception as error:  # noqa: BLE001 - every failure is an outcome, classified
        failure = classify(error)
        return Outcome(target, failure.cause, _ms(started), failure=failure)
    candidate = response.candidates[0] if response.candidates else None
    finish = candidate.finish_reason.name if candidate is not None else "NO_CANDIDATE"
    return Outcome(
        target,
        Cause.OK,
        _ms(started),
        finish_reason=finish,
        tokens=response.usage_metadata.total_token_count,
        model_version=response.model_version,
    )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
