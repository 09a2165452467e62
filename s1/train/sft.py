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

from s1.forcing.formats import ReasoningFormat
from s1.train.presets import SFTPreset


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)  # training loss at each logging step
    steps: int = 0
    train_seconds: float = 0.0
    truncated: int = 0  # examples longer than the block size
    examples: int = 0
    trainer: Any = field(default=None, repr=False)  # the TRL trainer, when asked for (to save sharded weights)


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


ANSWER_PREFIX = "Answer: "  # s1K's text: <|im_start|>answer\nAnswer: {attempt}


def curated_record(row: dict[str, Any]) -> dict[str, str]:
    """A training record from a row in either layout: `question, thinking, answer`, or s1K's columns
    (`question`, `thinking_trajectories` (a list; the first is used), `attempt`, as `s1 curate` writes
    them), whose answer is `Answer: {attempt}` unless the attempt already starts with an answer label."""
    if "thinking" in row and "answer" in row:
        return {"question": row.get("question"), "thinking": row["thinking"], "answer": row["answer"]}
    missing = [k for k in ("question", "thinking_trajectories", "attempt") if k not in row]
    if missing:
        raise ValueError(f"training row needs question/thinking/answer or s1K's columns; missing {missing}")
    trajectories = row["thinking_trajectories"]
    thinking = trajectories[0] if isinstance(trajectories, list | tuple) and trajectories else trajectories
    attempt = str(row["attempt"] or "").strip()
    labelled = attempt.lower().startswith(("answer:", "final answer:"))
    answer = attempt if labelled else ANSWER_PREFIX + attempt
    return {"question": row["question"], "thinking": thinking, "answer": answer}


def load_records(path: str) -> list[dict[str, str]]:
    """Training records from a JSONL / Parquet file or a saved `datasets` directory (`curated_record`)."""
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        from datasets import load_from_disk

        rows = load_from_disk(str(p)).to_list()
    elif p.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(p).to_pylist()
    else:
        import json

        rows = [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [curated_record(r) for r in rows]


def sft_config(preset: SFTPreset, output_dir: str, max_steps: int | None = None, logging_steps: int = 10,
               **overrides: Any) -> Any:
    """TRL's `SFTConfig` for a preset: completion-only loss, the preset's optimiser and schedule, a global
    batch of `global_batch_size` split over devices and accumulation. `overrides` set any other field
    (e.g. checkpoint saving for long runs); the tiny recipe passes none."""
    from trl import SFTConfig

    use_cpu = not _cuda()
    per_device = min(preset.per_device_batch_size, preset.global_batch_size)
    accumulation = max(1, preset.global_batch_size // (per_device * _world_size()))
    kwargs: dict[str, Any] = dict(
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
    kwargs.update(overrides)
    return SFTConfig(**kwargs)


def count_over_block(tokenizer: Any, rows: list[dict[str, str]], block_size: int) -> int:
    """How many prompt/completion rows are longer than `block_size` tokens (TRL cuts them at the end)."""
    lengths = [len(tokenizer(r["prompt"] + r["completion"], add_special_tokens=False)["input_ids"]) for r in rows]
    return sum(n > block_size for n in lengths)


def train_sft(model: Any, tokenizer: Any, rows: list[dict[str, str]], preset: SFTPreset, output_dir: str,
              max_steps: int | None = None, logging_steps: int = 10, peft_config: Any = None,
              keep_trainer: bool = False, callbacks: list[Any] | None = None, args: Any = None,
              **overrides: Any) -> TrainResult:
    """Fine-tune `model` in place on prompt/completion `rows` with TRL; returns the loss history.

    `peft_config` trains adapters (LoRA) instead of all weights; `keep_trainer` returns the trainer in
    `TrainResult.trainer`, whose `save_model` gathers sharded (FSDP / ZeRO-3) weights. `args`: an
    `sft_config` built before the model was loaded; under DeepSpeed ZeRO-3 it must exist at load time so
    that `from_pretrained` partitions the weights instead of loading a full copy on every rank."""
    import time

    from datasets import Dataset
    from trl import SFTTrainer

    if not rows:
        raise ValueError("no training examples")
    truncated = count_over_block(tokenizer, rows, preset.block_size)
    if args is None:
        args = sft_config(preset, output_dir, max_steps=max_steps, logging_steps=logging_steps, **overrides)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                         peft_config=peft_config, callbacks=callbacks)
    started = time.perf_counter()
    out = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h and math.isfinite(h["loss"])]
    return TrainResult(losses=losses, steps=out.global_step, train_seconds=time.perf_counter() - started,
                       truncated=truncated, examples=len(rows), trainer=trainer if keep_trainer else None)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))
