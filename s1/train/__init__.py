"""Supervised fine-tuning on reasoning traces (TRL SFTTrainer, completion-only loss).

`presets` (hyperparameters: `s1`, `s1m`, `tiny`), `sft` (TRL config and trainer, the two text layouts,
record formatting), `warmup` (warmup as a step count on any transformers version), `data` (sources,
rows, length report), `control_data` (token-/step-conditional data), `padding` (a pad token that is not
EOS), `lora` (PEFT), `launch` + `configs/` (accelerate FSDP / ZeRO-3), `vlm` (Qwen2-VL SFT), `run`
(`s1 train` for any model). Heavy libraries are imported inside functions.
"""

from s1.train.presets import PRESETS, SFTPreset, get_preset

__all__ = ["PRESETS", "SFTPreset", "get_preset"]
