"""Images in OpenAI-style chat messages, sent inline as base64 `data:` URLs.

Servers behind an HTTP API cannot read this machine's files, so every image travels in the request.
PNG keeps pixels exact (a JPEG re-encode would change what the model sees between runs and backends).
Accepted forms: a PIL image, PNG/JPEG/... bytes, a file path, or an existing URL (passed through).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_bytes(image: Any) -> bytes:
    """The image as PNG bytes (PNG input is kept byte for byte)."""
    if isinstance(image, str | Path):
        image = Path(image).read_bytes()
    if isinstance(image, bytes | bytearray):
        if bytes(image[:8]) == PNG_MAGIC:
            return bytes(image)
        from PIL import Image

        image = Image.open(io.BytesIO(image))
    if not hasattr(image, "save"):
        raise TypeError(f"cannot send {type(image).__name__} as an image; give a PIL image, bytes or a file path")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def data_url(image: Any) -> str:
    """`data:image/png;base64,...` for `image`; a string that already is a URL is returned unchanged."""
    if isinstance(image, str) and image.startswith(("data:", "http://", "https://")):
        return image
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def image_part(image: Any) -> dict[str, Any]:
    """An OpenAI chat content part carrying `image`."""
    return {"type": "image_url", "image_url": {"url": data_url(image)}}


def has_images(messages: list[dict[str, Any]]) -> bool:
    return any(isinstance(m.get("content"), list) and any(
        isinstance(p, dict) and p.get("type") in ("image", "image_url") for p in m["content"]) for m in messages)


def inline_images(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages with every image part as a data-URL `image_url` part. Takes the OpenAI form
    (`{"type": "image_url", "image_url": {"url": ...}}`) and the transformers chat-template form
    (`{"type": "image", "image": ...}`)."""
    out = []
    for m in messages:
        content = m.get("content")
        if not isinstance(content, list):
            out.append(m)
            continue
        parts = []
        for p in content:
            if isinstance(p, dict) and p.get("type") == "image":
                parts.append(image_part(p.get("image", p.get("url"))))
            elif isinstance(p, dict) and p.get("type") == "image_url":
                url = p["image_url"]["url"] if isinstance(p.get("image_url"), dict) else p.get("image_url")
                parts.append(image_part(url))
            else:
                parts.append(p)
        out.append({**m, "content": parts})
    return out
