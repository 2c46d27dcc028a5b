"""vLLM's runtime LoRA API, as the adapter sync sidecar uses it: list, load and unload adapters.

vLLM (with `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`) serves `POST
/v1/load_lora_adapter`, `POST /v1/unload_lora_adapter` and lists each loaded
adapter in `GET /v1/models` as a card whose `parent` is the base model and
whose `root` is the adapter's folder. With `VLLM_API_KEY` (or `--api-key`) set,
every `/v1` route asks for `Authorization: Bearer <key>`, these included.
Standard library only: the sidecar's liveness probe imports this module.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable


class VllmError(RuntimeError):
    """vLLM refused a request or could not be reached."""


class VllmClient:
    """One vLLM server's LoRA routes; connection errors and 5xx are retried with backoff, 4xx are not."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout
        self._attempts = attempts
        self._backoff_seconds = backoff_seconds
        self._sleep = sleep

    def served_adapters(self) -> dict[str, str]:
        """{adapter name: adapter folder} for every LoRA adapter vLLM serves now (the base model is not one)."""
        cards = json.loads(self._request("GET", "/v1/models")).get("data", [])
        return {card["id"]: card.get("root") or "" for card in cards if card.get("parent")}

    def load_adapter(self, name: str, path: str) -> None:
        self._request("POST", "/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})

    def unload_adapter(self, name: str) -> None:
        self._request("POST", "/v1/unload_lora_adapter", {"lora_name": name})

    def _request(self, method: str, route: str, body: dict | None = None) -> bytes:
        url = self.base_url + route
        for attempt in range(1, self._attempts + 1):
            try:
                with urllib.request.urlopen(self._build(method, url, body), timeout=self._timeout) as response:
                    return response.read()
            except urllib.error.HTTPError as error:
                detail = error.read().decode("utf-8", "replace")[:500]
                if error.code < 500 or attempt == self._attempts:
                    raise VllmError(f"{method} {url} answered HTTP {error.code}: {detail}") from None
            except (urllib.error.URLError, OSError) as error:
                if attempt == self._attempts:
                    raise VllmError(
                        f"{method} {url} failed after {attempt} attempts: {error}; is vLLM up at {self.base_url}?"
                    ) from None
            self._sleep(self._backoff_seconds * 2 ** (attempt - 1))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _build(self, method: str, url: str, body: dict | None) -> urllib.request.Request:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = None if body is None else json.dumps(body).encode("utf-8")
        return urllib.request.Request(url, data=data, headers=headers, method=method)
