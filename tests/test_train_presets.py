"""The `s1` preset is the paper's recipe, and TRL gets it: checked against s1-32B's published values."""

from __future__ import annotations

import pytest
import torch

from s1.train.presets import get_preset
from s1.train.sft import sft_config


def test_s1_preset_is_the_papers_recipe():
    p = get_preset("s1")
    assert (p.epochs, p.learning_rate, p.lr_scheduler) == (5, 1e-5, "cosine")
    assert (p.warmup_ratio, p.weight_decay) == (0.05, 1e-4)
    assert (p.adam_beta1, p.adam_beta2, p.bf16, p.global_batch_size, p.block_size) == (0.9, 0.95, True, 16, 32768)


def test_tiny_preset_is_unchanged():
    p = get_preset("tiny")
    assert (p.learning_rate, p.epochs, p.warmup_ratio, p.weight_decay, p.adam_beta2, p.block_size) == (
        3e-3, 1, 0.03, 0.01, 0.98, 768)
    assert (p.global_batch_size, p.per_device_batch_size, p.bf16) == (16, 16, False)


@pytest.mark.parametrize("world", [1, 16])
def test_trl_config_carries_the_preset(monkeypatch, tmp_path, world):
    import s1.train.sft as sft

    monkeypatch.setattr(sft, "_world_size", lambda: world)  # as under `accelerate launch` on `world` GPUs
    args = sft_config(get_preset("s1"), str(tmp_path))
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps * world == 16
    assert (args.learning_rate, args.num_train_epochs, args.weight_decay) == (1e-5, 5, 1e-4)
    assert (args.adam_beta1, args.adam_beta2, args.max_length) == (0.9, 0.95, 32768)
    assert args.lr_scheduler_type.value == "cosine" and args.warmup_steps == 0.05
    assert args.completion_only_loss is True and args.packing is False
    assert args.activation_checkpointing is True
    assert args.bf16 == torch.cuda.is_available()  # bf16 wherever there is a GPU; CPU runs in fp32


def test_unknown_preset_lists_the_allowed():
    with pytest.raises(ValueError, match="allowed: s1, tiny"):
        get_preset("s2")
