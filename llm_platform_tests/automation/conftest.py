"""A local webhook receiver for the alert tests; the tiny platform they run is `llm_platform_tests/tiny_platform.py`."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

MAX_BODY_BYTES = 64_000


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
