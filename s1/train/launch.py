"""Scale-out through accelerate: the shipped launch configs, filled in for a model, and the launch line.

`configs/fsdp.yaml` (full shard, transformer auto-wrap of the decoder layer, CPU-RAM-efficient loading,
full state dict at save: s1-32B's setup) and `configs/zero3.yaml` (DeepSpeed ZeRO-3 with a 16-bit
consolidated save: S1-M's setup). FSDP must wrap the model's own decoder layer class; `decoder_layers`
reads it from the architecture (transformers' `_no_split_modules`), so a config for any model is right.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).parent / "configs"
CONFIGS = {"fsdp": "fsdp.yaml", "zero3": "zero3.yaml"}


def config_path(name: str) -> Path:
    try:
        return CONFIG_DIR / CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown accelerate config {name!r}; allowed: {', '.join(CONFIGS)}") from None


def load_config(name: str) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(config_path(name).read_text())


def model_class(config: Any) -> type:
    """The transformers class `s1 train` would build for a config (causal LM, else image-text-to-text)."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    for auto in (AutoModelForCausalLM, AutoModelForImageTextToText):
        try:
            return auto._model_mapping[type(config)]
        except KeyError:
            continue
    raise ValueError(f"no causal-LM or vision-language class for model type {config.model_type!r}")


def decoder_layers(model: str | Any) -> list[str]:
    """The layer classes FSDP should wrap, from a model id / path or a config: the architecture's
    `_no_split_modules` (e.g. `Qwen2DecoderLayer`; Qwen2-VL adds its vision block)."""
    config = model
    if isinstance(model, str):
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model)
    layers = list(getattr(model_class(config), "_no_split_modules", None) or [])
    if not layers:
        raise ValueError(f"{type(config).__name__}: the architecture names no decoder layer class to wrap")
    return layers


def accelerate_config(name: str, model: str | Any | None = None, nodes: int | None = None,
                      gpus_per_node: int | None = None) -> dict[str, Any]:
    """A shipped config with the machine counts and (FSDP) the model's decoder layer class filled in."""
    config = load_config(name)
    if nodes is not None or gpus_per_node is not None:
        nodes = nodes or config["num_machines"]
        per_node = gpus_per_node or config["num_processes"] // config["num_machines"]
        if nodes < 1 or per_node < 1:
            raise ValueError(f"nodes and gpus_per_node must be >= 1, got {nodes} and {per_node}")
        config["num_machines"], config["num_processes"] = nodes, nodes * per_node
    if model is not None and "fsdp_config" in config:
        config["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"] = ",".join(decoder_layers(model))
    return config


def write_config(config: dict[str, Any], path: str | Path) -> Path:
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def launch_command(config_file: str | Path, train_args: list[str], nodes: int = 1) -> str:
    """The `accelerate launch` line to run on every node (NODE_RANK / MASTER_ADDR from the scheduler)."""
    parts = ["accelerate", "launch", "--config_file", str(config_file)]
    line = shlex.join(parts)
    if nodes > 1:
        line += " --machine_rank $NODE_RANK --main_process_ip $MASTER_ADDR --main_process_port 29500"
    return line + " " + shlex.join(["-m", "s1.cli", "train", *train_args])
