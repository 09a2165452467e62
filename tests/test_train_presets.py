"""The `s1` and `s1m` presets are their papers' recipes, and TRL gets them: every field against the
reference's value (s1: train/sft.sh + sft.py and TrainingArguments' defaults; S1-M: scripts/qwen2vl_sft.sh
+ align-anything's text_image_to_text/sft.yaml)."""

from __future__ import annotations

import pytest
import torch

from s1.train.presets import get_preset
from s1.train.sft import sft_config


def test_s1_preset_is_s1s_sft_sh():
    p = get_preset("s1")
    assert (p.epochs, p.learning_rate, p.lr_scheduler) == (5, 1e-5, "cosine")
    assert (p.warmup_ratio, p.warmup_rounding, p.weight_decay) == (0.05, "ceil", 1e-4)
    assert (p.adam_beta1, p.adam_beta2, p.adam_epsilon, p.max_grad_norm) == (0.9, 0.95, 1e-8, 1.0)
    assert (p.bf16, p.global_batch_size, p.per_device_batch_size, p.block_size) == (True, 16, 1, 32768)
    assert (p.seed, p.sampling, p.gradient_checkpointing, p.layout) == (42, "random", False, "chat")
    assert p.pad_token == "<|fim_pad|>"


def test_s1m_preset_is_s1m_7bs_align_anything_config():
    p = get_preset("s1m")
    assert (p.epochs, p.learning_rate, p.lr_scheduler) == (3, 2e-5, "cosine")
    assert (p.warmup_ratio, p.warmup_rounding, p.weight_decay) == (0.03, "floor", 0.0)
    assert (p.adam_beta1, p.adam_beta2, p.adam_epsilon, p.max_grad_norm) == (0.9, 0.95, 1e-8, 1.0)
    assert (p.per_device_batch_size, p.gradient_accumulation, p.block_size, p.bf16) == (8, 16, 32000, True)
    assert (p.seed, p.gradient_checkpointing, p.freeze_vision, p.layout) == (42, True, "none", "chat")


def test_tiny_preset_is_unchanged():
    p = get_preset("tiny")
    assert (p.learning_rate, p.epochs, p.warmup_ratio, p.weight_decay, p.adam_beta2, p.block_size) == (
        3e-3, 1, 0.03, 0.01, 0.98, 768)
    assert (p.global_batch_size, p.per_device_batch_size, p.bf16) == (16, 16, False)
    assert (p.layout, p.sampling, p.warmup_rounding, p.seed, p.gradient_accumulation) == (
        "completion", "group_by_length", "ceil", 0, None)


@pytest.mark.parametrize("world", [1, 16])
def test_trl_config_carries_the_preset(monkeypatch, tmp_path, world):
    import s1.train.sft as sft

    monkeypatch.setattr(sft, "_world_size", lambda: world)  # as under `accelerate launch` on `world` GPUs
    args = sft_config(get_preset("s1"), str(tmp_path))
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps * world == 16
    assert (args.learning_rate, args.num_train_epochs, args.weight_decay) == (1e-5, 5, 1e-4)
    assert (args.adam_beta1, args.adam_beta2, args.adam_epsilon, args.max_length) == (0.9, 0.95, 1e-8, 32768)
    assert args.lr_scheduler_type.value == "cosine" and args.max_grad_norm == 1.0
    assert args.completion_only_loss is True and args.packing is False
    assert args.activation_checkpointing is False and args.seed == 42
    assert args.train_sampling_strategy == "random"
    assert args.bf16 == torch.cuda.is_available()  # bf16 wherever there is a GPU; CPU runs in fp32


@pytest.mark.parametrize("world", [1, 8])
def test_s1m_accumulates_16_on_any_gpu_count(monkeypatch, tmp_path, world):
    import s1.train.sft as sft

    monkeypatch.setattr(sft, "_world_size", lambda: world)
    args = sft_config(get_preset("s1m"), str(tmp_path))
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (8, 16)  # global 128 x GPUs


def test_unknown_preset_lists_the_allowed():
    with pytest.raises(ValueError, match="allowed: s1, s1m, tiny"):
        get_preset("s2")
