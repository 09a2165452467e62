"""Named SFT hyperparameter sets: `s1` is s1-32B's recipe (simplescaling/s1 `train/sft.sh` + `sft.py`),
`s1m` is S1-M-7B's (PKU-Alignment/s1-m `scripts/qwen2vl_sft.sh` + align-anything's
`configs/train/text_image_to_text/sft.yaml`), `tiny` trains the embedded tiny reasoning model on a CPU.
docs/training.md sets every field beside the reference's value."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

LAYOUTS = ("completion", "chat")
SAMPLINGS = ("group_by_length", "random")
ROUNDINGS = ("ceil", "floor")


@dataclass(frozen=True)
class SFTPreset:
    """One recipe. Beyond the optimiser and schedule:

    - `layout`: how an example becomes text and loss mask. `completion`: the inference prompt (ending
      in the thinking opener) and, with loss, trace + closer + answer + EOS. `chat`: s1's
      `tokenization.py`, the whole exchange rendered by the chat template, loss on the assistant turn
      (thinking opener and the template's end of turn included), as s1's completion-only collator
      (`DataCollatorForCompletionOnlyLM` from `<|im_start|>assistant\\n`) puts it.
    - `warmup_ratio` with `warmup_rounding`: warmup steps = ceil (HF Trainer, s1) or floor
      (align-anything, S1-M) of ratio x optimizer steps, computed by `s1.train.sft.warmup_steps`.
    - `gradient_accumulation`: fixed accumulation (S1-M: 16, the global batch then grows with the GPU
      count); None derives it from `global_batch_size`.
    - `freeze_vision`: the vision side frozen by default for `--vision` (see `s1.train.vlm`).
    """

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
    layout: str = "completion"
    sampling: str = "group_by_length"
    warmup_rounding: str = "ceil"
    gradient_accumulation: int | None = None
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    pad_token: str | None = None  # preferred pad token when the vocabulary has it (s1: Qwen's <|fim_pad|>)
    freeze_vision: str = "tower"

    def __post_init__(self) -> None:
        for name, allowed in (("layout", LAYOUTS), ("sampling", SAMPLINGS), ("warmup_rounding", ROUNDINGS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"preset {self.name!r}: {name} must be one of {', '.join(allowed)}, "
                                 f"got {getattr(self, name)!r}")

    def replace(self, **changes: Any) -> SFTPreset:
        return replace(self, **changes)


PRESETS: dict[str, SFTPreset] = {
    # s1-32B (train/sft.sh): Qwen2.5-32B-Instruct on s1K, 5 epochs, lr 1e-5 cosine to 0 with 5% warmup,
    # weight decay 1e-4, AdamW (0.9, 0.95), bf16, 16 GPUs x batch 1, no accumulation, block 32768, FSDP;
    # TrainingArguments' defaults for the rest (seed 42, eps 1e-8, grad norm 1.0, random order); no
    # gradient checkpointing (commented out in sft.sh); text and mask as tokenization.py + sft.py build them.
    "s1": SFTPreset(name="s1", learning_rate=1e-5, epochs=5, lr_scheduler="cosine", warmup_ratio=0.05,
                    weight_decay=1e-4, adam_beta1=0.9, adam_beta2=0.95, bf16=True, global_batch_size=16,
                    per_device_batch_size=1, block_size=32768, seed=42, gradient_checkpointing=False,
                    layout="chat", sampling="random", pad_token="<|fim_pad|>"),
    # S1-M-7B (align-anything text_image_to_text/sft.yaml, model_max_length 32000 from qwen2vl_sft.sh):
    # Qwen2-VL-7B-Instruct, 3 epochs, lr 2e-5 cosine with int(3% x steps) warmup, weight decay 0, AdamW
    # (0.9, 0.95) eps 1e-8, bf16, 8 per GPU x 16 accumulation, grad norm 1.0, seed 42, gradient
    # checkpointing, DeepSpeed ZeRO-3; loss on the whole response, its <think> opener included (the
    # assistant turn of its TI2T template). Its `freeze_vision_tower` names a module Qwen2-VL does not have
    # ("vision_tower"; Qwen2-VL's is "visual"), so S1-M trained the vision encoder too: nothing frozen.
    "s1m": SFTPreset(name="s1m", learning_rate=2e-5, epochs=3, lr_scheduler="cosine", warmup_ratio=0.03,
                     weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.95, bf16=True, global_batch_size=128,
                     per_device_batch_size=8, block_size=32000, seed=42, gradient_checkpointing=True,
                     layout="chat", sampling="random", warmup_rounding="floor", gradient_accumulation=16,
                     freeze_vision="none"),
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
