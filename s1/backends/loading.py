"""Loading transformers models and tokenizers: Hub ids, local directories and GGUF files."""

from __future__ import annotations

import os
from typing import Any

DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES_HELP = "auto, cpu, cuda, cuda:N or mps"


def quiet_hf_logging() -> None:
    """Silence transformers' warnings and progress bars (and datasets', if installed) for CLI output."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        import datasets
    except ImportError:
        return
    datasets.disable_progress_bars()


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device == "cpu" or device == "mps" or device == "cuda" or device.startswith("cuda:"):
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but CUDA is not available on this machine")
        return device
    raise ValueError(f"unknown device {device!r}; allowed: {DEVICES_HELP}")


def resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPES)}")
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def split_gguf(model: str, gguf_file: str | None) -> tuple[str, str | None]:
    """Accept `--model dir --gguf-file f.gguf` or `--model path/to/f.gguf`."""
    if gguf_file is None and model.endswith(".gguf"):
        if not os.path.isfile(model):
            raise ValueError(f"GGUF file not found: {model}")
        return os.path.dirname(os.path.abspath(model)), os.path.basename(model)
    return model, gguf_file


def load_hf(model: str, *, gguf_file: str | None = None, device: str = "auto", dtype: str = "auto",
            trust_remote_code: bool = False, tokenizer: str | None = None) -> tuple[Any, Any]:
    """Load (model, tokenizer). Local paths work offline; Hub ids need a connected machine. `tokenizer`
    loads the tokenizer (and its chat template) from another repository, as s1's commands run s1-32B with
    Qwen2.5-32B-Instruct's."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, gguf_file = split_gguf(model, gguf_file)
    explicit_path = model.startswith(("/", "./", "../", "~"))  # "org/name" is a Hub id, not a path
    if explicit_path and not os.path.exists(os.path.expanduser(model)):
        raise ValueError(f"model path not found: {model}")
    model = os.path.expanduser(model)
    dev = resolve_device(device)
    kw: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if gguf_file:
        kw["gguf_file"] = gguf_file
    try:
        tok = AutoTokenizer.from_pretrained(os.path.expanduser(tokenizer) if tokenizer else model,
                                            **({"trust_remote_code": trust_remote_code} if tokenizer else kw))
        net = AutoModelForCausalLM.from_pretrained(model, dtype=resolve_dtype(dtype, dev), **kw)
    except OSError as exc:
        raise ValueError(f"cannot load model {model!r}: {exc}") from exc
    return net.to(dev), tok
