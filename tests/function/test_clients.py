"""Where the canary's clients connect in production: Vertex AI's regional hosts."""

from __future__ import annotations

import pytest

from function.clients import vertex_endpoint


@pytest.mark.parametrize(
    ("location", "host"),
    [
        ("us-central1", "us-central1-aiplatform.googleapis.com"),
        ("europe-west4", "europe-west4-aiplatform.googleapis.com"),
        ("asia-northeast1", "asia-northeast1-aiplatform.googleapis.com"),
        ("global", "aiplatform.googleapis.com"),  # the global endpoint has no region prefix
        ("us", "aiplatform.us.rep.googleapis.com"),
        ("eu", "aiplatform.eu.rep.googleapis.com"),
    ],
)
def test_vertex_endpoint(location: str, host: str) -> None:
    assert vertex_endpoint(location) == host
