"""A tiny real platform: sources of a few Python help topics as Markdown, storage in a temp folder."""

from __future__ import annotations

import json
import pydoc_data.topics
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
import yaml

from llm_platform.config import PlatformConfig, load_config
from llm_platform.definitions import build_definitions

# Short, varied help topics; the first 1,500 characters of each make one to three chunks.
TOPICS = {"alpha": ("assert", "break", "class"), "beta": ("booleans", "calls", "async")}
TOPIC_CHARS = 1500
MAX_BODY_BYTES = 64_000


def write_topics(folder: Path, topics: Sequence[str]) -> None:
    """One Markdown file per help topic, titled with the topic's name."""
    folder.mkdir(parents=True, exist_ok=True)
    for topic in topics:
        (folder / f"{topic}.md").write_text(f"# {topic}\n\n{pydoc_data.topics.topics[topic][:TOPIC_CHARS]}\n", encoding="utf-8")


@dataclass(frozen=True)
class TinyPlatform:
    config: PlatformConfig
    defs: dg.Definitions
    root: Path

    def source_folder(self, name: str) -> Path:
        return self.root / name

    def materialize(self, instance: dg.DagsterInstance, selection: Sequence[str], partition: str | None = None) -> dg.ExecuteInProcessResult:
        """Materialize only `selection`, in process, without raising on failure."""
        return dg.materialize(
            self.defs.assets, resources=self.defs.resources, selection=list(selection), partition_key=partition, instance=instance, raise_on_error=False
        )


@pytest.fixture(scope="session")
def tiny_platform(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., TinyPlatform]:
    """Builds a platform over `sources` (name -> help topics; default TOPICS) plus config `settings`, each in a fresh temp folder."""

    def build(sources: Mapping[str, Sequence[str]] = TOPICS, settings: Mapping | None = None) -> TinyPlatform:
        root = tmp_path_factory.mktemp("platform")
        for name, topics in sources.items():
            write_topics(root / name, topics)
        raw = {"sources": [{"name": name, "location": name} for name in sources], **(settings or {})}
        (root / "config.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
        config = load_config(root / "config.yaml")
        return TinyPlatform(config, build_definitions(config, home=str(root / "home"), executor="in_process"), root)

    return build


@dataclass
class Webhook:
    """A local HTTP endpoint that records JSON bodies and answers with `status`."""

    url: str
    status: int = 200
    posts: list[dict] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)


def _handler(webhook: Webhook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = min(int(self.headers.get("Content-Length", 0)), MAX_BODY_BYTES)
            webhook.posts.append(json.loads(self.rfile.read(length)))
            webhook.content_types.append(self.headers.get("Content-Type", ""))
            self.send_response(webhook.status)
            self.end_headers()

        def log_message(self, *args) -> None:
            """Silence the per-request stderr line."""

    return Handler


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hook))
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nothing listens on: the port was free a moment ago and is closed again."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
