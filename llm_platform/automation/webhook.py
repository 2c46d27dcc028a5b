"""The alert channel: a chat webhook (Slack-compatible JSON), configured or named by `LLM_PLATFORM_WEBHOOK_URL`."""

from __future__ import annotations

import json
import urllib.request

WEBHOOK_ENV = "LLM_PLATFORM_WEBHOOK_URL"


def post_webhook(url: str, text: str, *, timeout: float = 10.0) -> int:
    """POST `{"text": text}` as JSON to `url`; returns the HTTP status, raises OSError on failure."""
    request = urllib.request.Request(
        url, data=json.dumps({"text": text}).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status
