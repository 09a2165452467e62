"""SFT on reasoning traces with TRL's `SFTTrainer`: prompt/completion data, loss on the completion only.

A record is `question`, `thinking`, `answer` (the text after thinking). Two layouts (`SFTPreset.layout`):

- `completion` (the tiny recipe): the prompt is built with the model's chat template and the format's
  thinking opener, exactly as inference builds it; the loss covers trace, closer, answer and EOS.
- `chat` (s1, `data/tokenization.py` + `train/sft.py`): the chat template renders the user turn and one
  assistant turn holding `{think_open}{thinking}\n{think_close}{answer}`; the loss covers the whole
  assistant turn after `<|im_start|>assistant\n` (thinking opener and the template's end of turn
  included), which is what s1's `DataCollatorForCompletionOnlyLM` trains on.

Warmup is explicit: `warmup_steps` turns the preset's ratio into a step count the same way on every
transformers version (HF's Trainer rounds up, s1's; align-anything rounds down, S1-M's).
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
                         system: str | None = None, layout: str = "completion") -> dict[str, str]:
    """One training example as prompt and completion text (see the module docstring for the layouts)."""
    for key in ("question", "thinking", "answer"):
        if not isinstance(record.get(key), str) or not record[key]:
            raise ValueError(f"training record needs a non-empty string {key!r}; got keys {sorted(record)}")
    if layout == "chat":
        return chat_prompt_completion(record, tokenizer, fmt, system)
    prompt = fmt.render_prompt(tokenizer, record["question"], system=system)
    end = tokenizer.eos_token or ""
    completion = record["thinking"].rstrip("\n") + "\n" + fmt.think_close + record["answer"] + end
    return {"prompt": prompt, "completion": completion}


def chat_prompt_completion(record: dict[str, Any], tokenizer: Any, fmt: ReasoningFormat,
                           system: str | None = None) -> dict[str, str]:
    """s1's text (`tokenization.py`): the chat template over the user turn and an assistant turn
    `{think_open}{thinking}\n{think_close}{answer}` (thinking and answer stripped); the prompt is the
    template's generation prompt, so the completion is the whole assistant turn."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the s1 layout renders examples with the tokenizer's chat template, and it has none")
    messages = [{"role": "user", "content": record["question"]}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    turn = fmt.think_open + record["thinking"].strip() + "\n" + fmt.think_close + record["answer"].strip()
    full = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": turn}], tokenize=False)
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not full.startswith(prompt):
        raise ValueError("the chat template renders the conversation so that the prompt is not its beginning; "
                         "the s1 layout needs the assistant turn to follow the generation prompt")
    return {"prompt": prompt, "completion": full[len(prompt):]}


def tokenize_chat_rows(rows: list[dict[str, str]], tokenizer: Any) -> list[dict[str, list[int]]]:
    """`input_ids` and `completion_mask` of chat-layout rows, tokenised whole as s1 tokenised its `text`
    (TRL would append EOS after the template's end of turn, which s1's text does not have)."""
    out = []
    for row in rows:
        ids = tokenizer(row["prompt"] + row["completion"])["input_ids"]
        prompt_ids = tokenizer(row["prompt"])["input_ids"]
        start = 0
        while start < min(len(ids), len(prompt_ids)) and ids[start] == prompt_ids[start]:
            start += 1
        out.append({"input_ids": ids, "completion_mask": [0] * start + [1] * (len(ids) - start)})
    return out


ANSWER_PREFIX = "Answer: "  # s1's tokenization.py adds it unless the attempt holds "Answer:" anywhere


def curated_record(row: dict[str, Any]) -> dict[str, str]:
    """A training record from a row in either layout: `question, thinking, answer`, or s1K's columns
    (`question`, `thinking_trajectories`, `attempt`, as `s1 curate` writes them) read as s1's
    `tokenization.py` reads them: every trajectory, joined by newlines and stripped; the attempt
    prefixed with `Answer: ` unless "Answer:" appears in it anywhere, then stripped."""
    if "thinking" in row and "answer" in row:
        return {"question": row.get("question"), "thinking": row["thinking"], "answer": row["answer"]}
    missing = [k for k in ("question", "thinking_trajectories", "attempt") if k not in row]
    if missing:
        raise ValueError(f"training row needs question/thinking/answer or s1K's columns; missing {missing}")
    trajectories = row["thinking_trajectories"]
    if isinstance(trajectories, list | tuple):
        trajectories = "\n".join(str(t) for t in trajectories)
    attempt = str(row["attempt"] or "")
    answer = attempt if "Answer:" in attempt else ANSWER_PREFIX + attempt
    return {"question": row["question"], "thinking": str(trajectories or "").strip(), "answer": answer.strip()}


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
    per_device, accumulation = batch_split(preset)
    kwargs: dict[str, Any] = dict(
        output_dir=output_dir,
        max_length=preset.block_size,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation,
        learning_rate=preset.learning_rate,
        num_train_epochs=preset.epochs,
        max_steps=max_steps if max_steps is not None else preset.max_steps,
        lr_scheduler_type=preset.lr_scheduler,
        warmup_steps=preset.warmup_ratio,  # recorded; the scheduler gets s1.train.warmup's step count
        weight_decay=preset.weight_decay,
        adam_beta1=preset.adam_beta1,
        adam_beta2=preset.adam_beta2,
        adam_epsilon=preset.adam_epsilon,
        max_grad_norm=preset.max_grad_norm,
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
        # group_by_length: batches of similar lengths waste little on padding (the tiny recipe, on CPU);
        # random: the Trainer's default order, which s1 and S1-M trained in
        train_sampling_strategy=preset.sampling,
        disable_tqdm=True,
    )
    kwargs.update(overrides)
    return SFTConfig(**kwargs)


def batch_split(preset: SFTPreset) -> tuple[int, int]:
    """(per-device batch, accumulation steps): the preset's fixed accumulation (S1-M's), else what makes
    the global batch `global_batch_size` over this many processes."""
    if preset.gradient_accumulation is not None:
        return preset.per_device_batch_size, preset.gradient_accumulation
    per_device = min(preset.per_device_batch_size, preset.global_batch_size)
    return per_device, max(1, preset.global_batch_size // (per_device * _world_size()))


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

    from s1.train.warmup import make_trainer

    if not rows:
        raise ValueError("no training examples")
    truncated = count_over_block(tokenizer, rows, preset.block_size)
    if args is None:
        args = sft_config(preset, output_dir, max_steps=max_steps, logging_steps=logging_steps, **overrides)
    data = Dataset.from_list(tokenize_chat_rows(rows, tokenizer) if preset.layout == "chat" else rows)
    trainer = make_trainer(SFTTrainer, preset, model=model, args=args, train_dataset=data, processing_class=tokenizer,
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
