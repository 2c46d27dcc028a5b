"""Stand-ins for the two remote ends of the vLLM adapter sync: vLLM's LoRA routes and the MLflow registry.

FakeVllm answers like vLLM 0.11's OpenAI server: `GET /v1/models` lists the
base model and each adapter (parent = base, root = its folder), loading a name
that is loaded fails with 400, unloading an unknown name with 404, and an API
key guards every `/v1` route. It records each call and can be told to fail a
load by name (`fail_loads`) or by name and folder (`fail_name_paths`), or to
accept one without listing it (`unlisted_loads`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

BASE = "/models/base"


@dataclass
class FakeVllm:
    adapters: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, str, dict]] = field(default_factory=list)
    fail_loads: set[str] = field(default_factory=set)
    fail_name_paths: set[tuple[str, str]] = field(default_factory=set)
    unlisted_loads: set[str] = field(default_factory=set)
    api_key: str | None = None
    url: str = ""

    def changes(self) -> list[tuple[str, str]]:
        """The load and unload calls, as (route, adapter name)."""
        return [
            (route.removeprefix("/v1/"), body["lora_name"]) for method, route, body in self.calls if method == "POST"
        ]

    def answer(self, method: str, route: str, body: dict, authorization: str | None) -> tuple[int, object]:
        self.calls.append((method, route, body))
        if self.api_key and route.startswith("/v1") and authorization != f"Bearer {self.api_key}":
            return 401, {"error": "Unauthorized"}
        if method == "GET" and route == "/v1/models":
            cards = [{"id": BASE, "root": BASE, "parent": None}]
            return 200, {
                "object": "list",
                "data": cards + [{"id": n, "root": p, "parent": BASE} for n, p in self.adapters.items()],
            }
        if route == "/v1/load_lora_adapter":
            return self._load(body["lora_name"], body["lora_path"])
        if route == "/v1/unload_lora_adapter":
            if self.adapters.pop(body["lora_name"], None) is None:
                return 404, {"message": f"The lora adapter '{body['lora_name']}' cannot be found."}
            return 200, f"Success: LoRA adapter '{body['lora_name']}' removed successfully."
        return 404, {"detail": "Not Found"}

    def _load(self, name: str, path: str) -> tuple[int, object]:
        if name in self.adapters:
            return 400, {"message": f"The lora adapter '{name}' has already been loaded."}
        if name in self.fail_loads or (name, path) in self.fail_name_paths:
            return 400, {"message": f"Loading lora {name} failed: No adapter found for {path}"}
        if name not in self.unlisted_loads:
            self.adapters[name] = path
        return 200, f"Success: LoRA adapter '{name}' added successfully."


def _handler(fake: FakeVllm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else {}
            status, payload = fake.answer(method, self.path, body, self.headers.get("Authorization"))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format, *args) -> None:
            pass

    return Handler


@contextmanager
def running_fake_vllm(fake: FakeVllm) -> Iterator[FakeVllm]:
    """`fake` serving on 127.0.0.1 for the duration of a `with` block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class FakeRegistry:
    """The two MlflowClient calls fetch_adapter and the alias poll make, over adapters written to `root`."""

    root: Path
    bases: dict[str, str] = field(default_factory=dict)  # version -> base model id
    alias: str | None = None
    downloads: list[str] = field(default_factory=list)

    def register(self, version: str, base_model: str = "base-a", *, promote: bool = True) -> None:
        self.bases[version] = base_model
        if promote:
            self.alias = version

    def get_model_version_by_alias(self, name: str, alias: str):
        from mlflow.exceptions import MlflowException

        if self.alias is None:
            raise MlflowException(f"Registered model alias {alias} not found.", error_code="RESOURCE_DOES_NOT_EXIST")
        return SimpleNamespace(
            version=self.alias, run_id=f"run-{self.alias}", tags={"base_model": self.bases[self.alias]}
        )

    def download_artifacts(self, run_id: str, path: str, dst_path: str) -> str:
        self.downloads.append(run_id)
        folder = Path(dst_path) / path
        folder.mkdir(parents=True)
        (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "run": run_id}), encoding="utf-8")
        return str(folder)
