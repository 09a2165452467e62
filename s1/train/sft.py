"""SFT on reasoning traces with TRL's `SFTTrainer`: prompt/completion data, loss on the completion only.

A record is `question`, `thinking`, `answer` (the text after thinking). The prompt is built with the
model's chat template and the format's thinking opener, exactly as inference builds it, so the model
learns the very token stream budget forcing will drive.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from s1.formats import ReasoningFormat
from s1.train.presets import SFTPreset


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)  # training loss at each logging step
    steps: int = 0
    train_seconds: float = 0.0
    truncated: int = 0  # examples longer than the block size
    examples: int = 0


def to_prompt_completion(record: dict[str, Any], tokenizer: Any, fmt: ReasoningFormat,
                         system: str | None = None) -> dict[str, str]:
    """One training example: the inference prompt, and thinking + closer + answer + end of turn."""
    for key in ("question", "thinking", "answer"):
        if not isinstance(record.get(key), str) or not record[key]:
            raise ValueError(f"training record needs a non-empty string {key!r}; got keys {sorted(record)}")
    prompt = fmt.render_prompt(tokenizer, record["question"], system=system)
    end = tokenizer.eos_token or ""
    completion = record["thinking"].rstrip("\n") + "\n" + fmt.think_close + record["answer"] + end
    return {"prompt": prompt, "completion": completion}


def train_sft(model: Any, tokenizer: Any, rows: list[dict[str, str]], preset: SFTPreset, output_dir: str,
              max_steps: int | None = None, logging_steps: int = 10) -> TrainResult:
    """Fine-tune `model` in place on prompt/completion `rows` with TRL; returns the loss history."""
    import time

    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if not rows:
        raise ValueError("no training examples")
    lengths = [len(tokenizer(r["prompt"] + r["completion"], add_special_tokens=False)["input_ids"]) for r in rows]
    truncated = sum(n > preset.block_size for n in lengths)
    use_cpu = not _cuda()
    per_device = min(preset.per_device_batch_size, preset.global_batch_size)
    accumulation = max(1, preset.global_batch_size // (per_device * _world_size()))
    args = SFTConfig(
        output_dir=output_dir,
        max_length=preset.block_size,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation,
        learning_rate=preset.learning_rate,
        num_train_epochs=preset.epochs,
        max_steps=max_steps if max_steps is not None else preset.max_steps,
        lr_scheduler_type=preset.lr_scheduler,
        warmup_steps=preset.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        weight_decay=preset.weight_decay,
        adam_beta1=preset.adam_beta1,
        adam_beta2=preset.adam_beta2,
        bf16=preset.bf16 and not use_cpu,
        activation_checkpointing=preset.gradient_checkpointing,
        completion_only_loss=True,
        packing=False,
        logging_steps=logging_steps,
        save_strategy="no",
        report_to="none",
        seed=preset.seed,
        data_seed=preset.seed,
        use_cpu=use_cpu,
        dataloader_num_workers=0,
        # batches of similar lengths waste little on padding (matters on CPU)
        train_sampling_strategy="group_by_length",
        disable_tqdm=True,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    started = time.perf_counter()
    out = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h and math.isfinite(h["loss"])]
    return TrainResult(losses=losses, steps=out.global_step, train_seconds=time.perf_counter() - started,
                       truncated=truncated, examples=len(rows))


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))
