"""A JSON-over-HTTP client for OpenAI-compatible servers: one pooled connection set, timeouts, and
retries with backoff on what is worth retrying (429, 5xx, dropped connections, timeouts, a body that is
not the JSON it should be). A call that still fails raises `UpstreamError` with what went wrong, so the
caller records it against the sample instead of mistaking it for model output.

Transport: aiohttp. httpx was the first choice, but on this project's 2-core machine its pool and pure
Python HTTP parsing sustained 40-130 requests/s against an instant server, aiohttp 600-700
(benchmarks/server_load.py); the client's overhead target is 500.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from typing import Any

try:
    import aiohttp
except ImportError as exc:  # an optional dependency: name the extra that brings it
    raise ImportError("the openai backend needs aiohttp: pip install 's1[serve]'") from exc

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class UpstreamError(RuntimeError):
    """An HTTP call that failed for good. `status` is None for connection-level failures."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    """`max_retries` extra attempts, waiting `backoff_s` * 2**attempt (with jitter, capped at `max_backoff_s`;
    a server's Retry-After wins when it asks for longer)."""

    max_retries: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        wait = min(self.max_backoff_s, self.backoff_s * 2**attempt) * (0.5 + random.random() / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_backoff_s))
        return wait


def split_base_url(base_url: str) -> tuple[str, str]:
    """(API base ending in /v1, server root): `http://h:8000/v1` and `http://h:8000` name the same server.
    vLLM serves `/tokenize` at the root, the OpenAI API under /v1."""
    base = base_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
    if base.endswith("/v1"):
        return base, base[: -len("/v1")]
    return base + "/v1", base


class JSONClient:
    """POST/GET JSON with retries over one `aiohttp` session (connections reused, up to `max_connections`).
    Create it inside the event loop that will use it."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 60.0,
                 retry: RetryPolicy | None = None, max_connections: int = 16):
        if timeout_s <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout_s}")
        self.api_base, self.root = split_base_url(base_url)
        self.retry = retry or RetryPolicy()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._session = aiohttp.ClientSession(
            headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s, connect=min(timeout_s, 10.0)),
            connector=aiohttp.TCPConnector(limit=max_connections),
        )
        self.calls = 0  # HTTP attempts made, retries included
        self.retries = 0

    async def aclose(self) -> None:
        await self._session.close()

    async def post(self, path: str, body: dict[str, Any], root: bool = False) -> dict[str, Any]:
        """POST to `path` under the API base (or the server root) and return the JSON object."""
        return await self._call("POST", f"{self.root if root else self.api_base}{path}", body)

    async def get(self, path: str) -> dict[str, Any]:
        return await self._call("GET", f"{self.api_base}{path}", None)

    async def _call(self, method: str, url: str, body: dict[str, Any] | None) -> dict[str, Any]:
        attempt = 0
        while True:
            self.calls += 1
            retry_after: float | None = None
            status: int | None = None
            try:
                async with self._session.request(method, url, json=body) as response:
                    status, raw = response.status, await response.read()
                    retry_after = _retry_after(response.headers.get("retry-after"))
            except (aiohttp.ClientError, TimeoutError) as exc:  # refused, dropped, timed out, broken body
                problem = f"{type(exc).__name__} on {method} {url}: {exc or 'no detail'}"
            else:
                if status == 200:
                    try:
                        data = json.loads(raw)
                    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                        problem = f"invalid JSON from {url} ({exc}): {raw[:200]!r}"
                    else:
                        if isinstance(data, dict):
                            return data
                        problem = f"expected a JSON object from {url}, got {type(data).__name__}"
                else:
                    problem = f"HTTP {status} from {method} {url}: {_error_message(raw)}"
                    if status not in RETRY_STATUS:
                        raise UpstreamError(problem, status)
            if attempt >= self.retry.max_retries:
                tries = f" (after {attempt + 1} attempts)" if attempt else ""
                raise UpstreamError(problem + tries, status)
            await asyncio.sleep(self.retry.delay(attempt, retry_after))
            attempt += 1
            self.retries += 1


def _error_message(raw: bytes) -> str:
    """The server's own message when it sent an OpenAI-style error body, else the start of the body."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw[:300].decode("utf-8", "replace") or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(data.get("detail"), str):
            return data["detail"]
    return str(data)[:300]


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
