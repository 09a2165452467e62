"""LoRA / QLoRA through PEFT: fine-tune a large model on one GPU (`pip install 's1[peft]'`).

LoRA trains low-rank adapters on every linear layer and leaves the base weights frozen; QLoRA also
loads the base in 4-bit NF4 (bitsandbytes, CUDA only). After training the adapters are merged into the
base so the output directory is a plain Hugging Face checkpoint that every backend loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LoraOptions:
    """Adapter shape. `target_modules="all-linear"` is PEFT's every-linear-layer-but-the-head."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | tuple[str, ...] = "all-linear"
    qlora: bool = False

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"lora r must be >= 1, got {self.r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"lora dropout must be in [0, 1), got {self.dropout}")


def _peft() -> Any:
    try:
        import peft
    except ImportError:
        raise ValueError("--lora needs PEFT: pip install 's1[peft]' (or pip install peft)") from None
    return peft


def peft_config(options: LoraOptions) -> Any:
    """PEFT's `LoraConfig` for a causal LM."""
    peft = _peft()
    targets = options.target_modules if isinstance(options.target_modules, str) else list(options.target_modules)
    return peft.LoraConfig(r=options.r, lora_alpha=options.alpha, lora_dropout=options.dropout,
                           target_modules=targets, task_type="CAUSAL_LM")


# the language model's linear layers in Qwen2-VL / Qwen2.5-VL (the vision tower keeps its weights)
VLM_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


def vlm_peft_config(options: LoraOptions) -> Any:
    """LoRA on the language model of a vision-language model only."""
    peft = _peft()
    return peft.LoraConfig(r=options.r, lora_alpha=options.alpha, lora_dropout=options.dropout,
                           target_modules=VLM_TARGETS, task_type="CAUSAL_LM")


def qlora_load_kwargs() -> dict[str, Any]:
    """`from_pretrained` kwargs that load the base in 4-bit NF4 with bf16 compute (QLoRA)."""
    import torch

    if not torch.cuda.is_available():
        raise ValueError("--qlora needs a CUDA GPU (bitsandbytes 4-bit); use --lora on CPU")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ValueError("--qlora needs bitsandbytes: pip install bitsandbytes") from None
    from transformers import BitsAndBytesConfig

    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
    return {"quantization_config": quant, "dtype": torch.bfloat16}


def merged(model: Any) -> Any:
    """The plain model with adapters folded into its weights (a model without adapters is returned as is)."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model
