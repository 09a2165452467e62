"""Named SFT hyperparameter sets. `s1` is the paper's recipe for s1-32B; `tiny` trains the embedded
tiny reasoning model on a laptop CPU."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class SFTPreset:
    name: str
    learning_rate: float
    epochs: float
    lr_scheduler: str
    warmup_ratio: float
    weight_decay: float
    adam_beta1: float
    adam_beta2: float
    bf16: bool
    global_batch_size: int
    per_device_batch_size: int
    block_size: int
    max_steps: int = -1  # -1: run the epochs
    seed: int = 0
    gradient_checkpointing: bool = False

    def replace(self, **changes: Any) -> SFTPreset:
        return replace(self, **changes)


PRESETS: dict[str, SFTPreset] = {
    # s1-32B: Qwen2.5-32B-Instruct on s1K, 5 epochs, lr 1e-5 cosine with 5% warmup, weight decay 1e-4,
    # AdamW betas (0.9, 0.95), bf16, batch 16 (16 GPUs x 1), block size 32768, FSDP.
    "s1": SFTPreset(name="s1", learning_rate=1e-5, epochs=5, lr_scheduler="cosine", warmup_ratio=0.05,
                    weight_decay=1e-4, adam_beta1=0.9, adam_beta2=0.95, bf16=True, global_batch_size=16,
                    per_device_batch_size=1, block_size=32768, gradient_checkpointing=True),
    # The embedded tiny reasoning model: a few million parameters, trained from scratch on CPU.
    "tiny": SFTPreset(name="tiny", learning_rate=3e-3, epochs=1, lr_scheduler="cosine", warmup_ratio=0.03,
                      weight_decay=0.01, adam_beta1=0.9, adam_beta2=0.98, bf16=False, global_batch_size=16,
                      per_device_batch_size=16, block_size=768),
}


def get_preset(name: str) -> SFTPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown training preset {name!r}; allowed: {', '.join(PRESETS)}") from None
