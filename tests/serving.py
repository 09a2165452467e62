"""Serving helpers for tests: a free loopback port, and the real `s1 serve` app in a uvicorn thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from s1.serve.app import ServeConfig, create_app, default_limits


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(backend: Any) -> Iterator[str]:
    """The real `s1 serve` app over `backend` in a uvicorn thread on a loopback port; yields the API base."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(backend, ServeConfig("tiny", default_limits(backend))),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
