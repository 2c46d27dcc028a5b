"""Short failure messages, posted to a chat webhook (Slack-compatible JSON) when one is set."""

from __future__ import annotations

import json
import urllib.request

_MAX_ERROR_CHARS = 400


def failure_message(job: str, run_id: str, error: str | None, ui_url: str | None = None) -> str:
    """One paragraph a person can act on: which job, which run, the first part of the error."""
    first = (error or "no error message").strip().splitlines()[0][:_MAX_ERROR_CHARS]
    link = f" {ui_url.rstrip('/')}/runs/{run_id}" if ui_url else ""
    return f"llm_platform: run {run_id[:8]} of {job} failed: {first}{link}"


def post_webhook(url: str, text: str, *, timeout: float = 10.0) -> int:
    """POST `{"text": text}` as JSON to `url`; returns the HTTP status, raises OSError on failure."""
    request = urllib.request.Request(url, data=json.dumps({"text": text}).encode(), headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status
