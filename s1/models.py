"""Where the embedded tiny reasoning model lives (package data, no download)."""

from __future__ import annotations

from pathlib import Path

TINY_MODEL_DIR = Path(__file__).parent / "data" / "tiny-reasoner"


def default_model_path() -> str:
    if not (TINY_MODEL_DIR / "config.json").exists():
        raise ValueError(
            "no --model given and the embedded tiny reasoning model is not in this install "
            f"({TINY_MODEL_DIR}); pass --model (a Hub id, a local directory or a .gguf file)"
        )
    return str(TINY_MODEL_DIR)
