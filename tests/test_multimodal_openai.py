"""Images over an OpenAI-compatible server: what the server receives is the image, byte for byte (PNG)
or pixel for pixel (other formats, sent as PNG, never re-encoded lossily); S1-M's defects stay fixed
(no round asks for <= 0 tokens, the answer has its own cap)."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from s1.backends.openai.backend import OpenAIBackend
from s1.forcing.policy import BudgetPolicy
from s1.forcing.request import Request

THINKING = "I see a red square with four equal sides ."


@contextmanager
def fake_server() -> Iterator[tuple[str, list[dict]]]:
    """A scripted vision model behind /v1/chat/completions; yields (API base, the request bodies it got).
    It thinks THINKING (one usage token per word, honouring max_tokens) and, once the context holds the
    closer, answers "red"."""
    bodies: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._send({"data": [{"id": "fake"}]})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            bodies.append(body)
            context = body["messages"][-1]["content"]
            words = THINKING.split() if "</think>" not in context else ["red"]
            n = min(body["max_tokens"], len(words))
            self._send({"choices": [{"message": {"role": "assistant", "content": " " + " ".join(words[:n])},
                                     "finish_reason": "stop" if n == len(words) else "length"}],
                        "usage": {"completion_tokens": n + (n == len(words))}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", bodies
    finally:
        server.shutdown()
        server.server_close()


def client(url: str) -> OpenAIBackend:
    return OpenAIBackend(url, model="fake", format="s1m", tokenizer="none", api="chat", context_length=4096,
                         max_retries=0)


def sent_images(body: dict) -> list[bytes]:
    user = next(m for m in body["messages"] if m["role"] == "user")
    parts = user["content"]
    assert parts[-1]["type"] == "text"  # images first, then the question (S1-M's order)
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert all(u.startswith("data:image/png;base64,") for u in urls)
    return [base64.b64decode(u.split(",", 1)[1]) for u in urls]


@pytest.fixture
def pictures(tmp_path: Path) -> tuple[Path, Path]:
    png, jpg = tmp_path / "square.png", tmp_path / "photo.jpg"
    image = Image.new("RGB", (31, 17), (200, 10, 10))
    for x in range(31):
        image.putpixel((x, x % 17), (x * 8, 255 - x, 3))
    image.save(png)
    image.save(jpg, quality=70)
    return png, jpg


def test_png_bytes_reach_the_server_intact_and_jpeg_pixels_unchanged(pictures):
    png, jpg = pictures
    with fake_server() as (url, bodies), client(url) as backend:
        (g,) = backend.generate([Request("q", messages="What color is the square?", images=(png, jpg))],
                                BudgetPolicy(max_thinking_tokens=64, num_ignore=1, max_answer_tokens=4))
    assert g.error is None, g.error
    assert g.ignores_applied == 1 and g.thinking_closed and g.answer.endswith("red")
    assert len(bodies) == 3  # think, think after "Wait,", answer
    assert all("</think>" in b["stop"] for b in bodies[:2])  # a thinking round stops at </think>, no answer
    for body in bodies:
        sent_png, sent_jpg = sent_images(body)
        assert sent_png == png.read_bytes()  # PNG travels byte for byte
        original = Image.open(jpg)
        decoded = Image.open(io.BytesIO(sent_jpg))
        assert decoded.format == "PNG" and decoded.size == original.size
        assert decoded.convert("RGB").tobytes() == original.convert("RGB").tobytes()  # no lossy re-encode


@pytest.mark.parametrize("budget", [0, 3])
def test_no_round_asks_for_zero_tokens_and_the_answer_has_its_own_cap(pictures, budget):
    with fake_server() as (url, bodies), client(url) as backend:
        (g,) = backend.generate([Request("q", messages="Color?", images=(pictures[0],))],
                                BudgetPolicy(max_thinking_tokens=budget, max_answer_tokens=2))
    assert g.error is None and g.cap_hit and g.thinking_tokens == budget
    assert "</think>\nFinal answer: " in g.text
    assert all(b["max_tokens"] >= 1 for b in bodies)  # S1-M sent budget <= 0 to the server
    thinking_rounds = [b for b in bodies if "</think>" not in b["messages"][-1]["content"]]
    assert len(thinking_rounds) == (1 if budget else 0) and all(b["max_tokens"] == budget for b in thinking_rounds)
    assert bodies[-1]["max_tokens"] == 2  # the answer phase: its own small cap, not a whole new generation


def test_unreadable_image_is_a_failed_record(tmp_path):
    with fake_server() as (url, bodies), client(url) as backend:
        (g,) = backend.generate([Request("q", messages="Color?", images=(tmp_path / "missing.png",))],
                                BudgetPolicy(max_thinking_tokens=4))
    assert g.error is not None and "request 'q': cannot read an image" in g.error and "missing.png" in g.error
    assert not bodies
