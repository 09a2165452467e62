"""Supervised fine-tuning on reasoning traces (TRL SFTTrainer, completion-only loss)."""

from s1.train.presets import PRESETS, SFTPreset, get_preset

__all__ = ["PRESETS", "SFTPreset", "get_preset"]
