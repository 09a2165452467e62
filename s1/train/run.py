"""`s1 train` for any model: load, format, train with a preset, save a plain Hugging Face checkpoint.

The same code runs on a laptop and under `accelerate launch` (FSDP / DeepSpeed come from the launch
config, not from here). The output directory holds weights, tokenizer (or processor) and
`s1_train.json` (what was trained on, the length report and the losses), and loads straight into
`s1.backends.load_backend`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from s1.train.control_data import ControlSpec
from s1.train.lora import LoraOptions
from s1.train.presets import SFTPreset, get_preset

SUMMARY_FILE = "s1_train.json"


@dataclass
class TrainJob:
    """One fine-tuning run. `preset_overrides` change preset fields (e.g. `block_size`, `learning_rate`)."""

    model: str
    data: str
    output: str
    preset: str = "s1"
    format: str = "auto"
    max_steps: int | None = None
    lora: LoraOptions | None = None
    control: ControlSpec | None = None
    overflow: str = "truncate"
    system: str | None = None
    vision: bool = False
    freeze_vision: str | None = None  # None: the preset's (s1m: none, as S1-M trained; else tower)
    logging_steps: int = 10
    preset_overrides: dict[str, Any] = field(default_factory=dict)
    trainer_overrides: dict[str, Any] = field(default_factory=dict)

    def resolved_preset(self) -> SFTPreset:
        return get_preset(self.preset).replace(**self.preset_overrides)


def _dtype(preset: SFTPreset) -> Any:
    import torch

    return torch.bfloat16 if preset.bf16 and torch.cuda.is_available() else torch.float32


def run_text(job: TrainJob, log: Any = print) -> dict[str, Any]:
    """Fine-tune a causal LM on reasoning records; returns the summary written beside the weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from s1.train.data import apply_overflow, build_rows, load_training_records
    from s1.train.lora import peft_config, qlora_load_kwargs
    from s1.train.padding import ensure_pad_token
    from s1.train.sft import sft_config, train_sft

    preset = job.resolved_preset()
    if preset.name == "s1m":
        raise ValueError("--preset s1m is S1-M-7B's recipe for Qwen2-VL: add --vision (image records)")
    out = Path(job.output)
    # built before the model loads: under ZeRO-3 its DeepSpeed config makes from_pretrained partition weights
    args = sft_config(preset, str(out / "_trainer"), max_steps=job.max_steps, logging_steps=job.logging_steps,
                      **job.trainer_overrides)
    try:
        tokenizer = AutoTokenizer.from_pretrained(job.model)
    except OSError as exc:
        raise ValueError(f"cannot load the tokenizer of {job.model!r}: {exc}") from exc
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{job.model}: the tokenizer has no chat template, and training builds prompts with it "
                         "(as inference does); use an instruct model or set tokenizer.chat_template first")
    pad = ensure_pad_token(tokenizer, prefer=preset.pad_token)
    fmt = training_format(job.format, tokenizer, log)
    # the data before the weights: a bad record fails in seconds, not after loading a 32B model
    rows = build_rows(load_training_records(job.data), tokenizer, fmt, control=job.control, system=job.system,
                      layout=preset.layout)
    rows, report = apply_overflow(rows, tokenizer, preset.block_size, job.overflow)
    log(f"data: {report.describe()}; format {fmt.name}, layout {preset.layout}; pad token {pad!r}")
    load_kwargs: dict[str, Any] = {"dtype": _dtype(preset)}
    if job.lora is not None and job.lora.qlora:
        load_kwargs.update(qlora_load_kwargs())
    try:
        model = AutoModelForCausalLM.from_pretrained(job.model, **load_kwargs)
    except OSError as exc:
        raise ValueError(f"cannot load model {job.model!r}: {exc}") from exc
    ensure_pad_token(tokenizer, model)  # the model learns the pad id (and grows its embedding if one was added)
    result = train_sft(model, tokenizer, rows, preset, str(out / "_trainer"), args=args,
                       peft_config=peft_config(job.lora) if job.lora is not None else None, keep_trainer=True)
    trainer = result.trainer
    save_checkpoint(trainer, tokenizer, out, job)
    summary = {"model": job.model, "data": job.data, "format": fmt.name, "system": job.system,
               "preset": asdict(preset), "lora": asdict(job.lora) if job.lora else None,
               "control": asdict(job.control) if job.control else None, "length_report": asdict(report),
               "steps": result.steps, "train_seconds": round(result.train_seconds, 1), "losses": result.losses}
    if trainer.is_world_process_zero():
        (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
        shutil.rmtree(out / "_trainer", ignore_errors=True)
    return summary


def training_format(name: str, tokenizer: Any, log: Any = print) -> Any:
    """The format to write traces in. `auto` reads the tokenizer; a plain instruct model (no reasoning
    markers yet, e.g. Qwen2.5-32B-Instruct before it becomes s1-32B) gets `s1`, the format s1 trains."""
    from s1.forcing.formats import PRESETS, get_format

    if name != "auto":
        return get_format(name)
    try:
        return get_format("auto", tokenizer)
    except ValueError:
        log("format: the tokenizer shows no reasoning markers; training it in the s1 format")
        return PRESETS["s1"]


def save_checkpoint(trainer: Any, tokenizer: Any, out: Path, job: TrainJob) -> None:
    """A plain HF checkpoint: LoRA adapters merged into the base; sharded weights gathered by the trainer.
    `tokenizer` is the tokenizer or, for vision models, the processor (saved beside the weights)."""
    if job.lora is None:
        trainer.save_model(str(out))  # gathers FSDP full state dict / ZeRO-3 16-bit weights on rank 0
    elif trainer.is_world_process_zero():
        if job.lora.qlora:  # a 4-bit base cannot hold merged weights: merge into a bf16 reload of the base
            import torch
            from peft import PeftModel
            from transformers import AutoModelForCausalLM

            adapter = out / "adapter"
            trainer.model.save_pretrained(str(adapter))
            base = AutoModelForCausalLM.from_pretrained(job.model, dtype=torch.bfloat16)
            PeftModel.from_pretrained(base, str(adapter)).merge_and_unload().save_pretrained(str(out))
        else:
            from s1.train.lora import merged

            merged(trainer.model).save_pretrained(str(out))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(out))


def run_vision(job: TrainJob, log: Any = print) -> dict[str, Any]:
    """Fine-tune a Qwen2-VL-family model on image records (`s1.train.vlm`)."""
    from transformers import AutoModelForImageTextToText

    from s1.backends.images import load_processor
    from s1.forcing.formats import PRESETS, get_format
    from s1.train.lora import vlm_peft_config
    from s1.train.padding import ensure_pad_token
    from s1.train.vlm import count_over_block, load_vlm_records, train_vlm, vlm_example, vlm_training_args

    if job.control is not None:
        raise ValueError("--vision does not combine with --control yet")
    if job.lora is not None and job.lora.qlora:
        raise ValueError("--vision supports --lora, not --qlora yet")
    preset = job.resolved_preset()
    out = Path(job.output)
    args = vlm_training_args(preset, str(out / "_trainer"), max_steps=job.max_steps, logging_steps=job.logging_steps,
                             **job.trainer_overrides)  # before loading, as in run_text (ZeRO-3)
    try:
        processor = load_processor(job.model)
    except (OSError, ImportError, ValueError) as exc:
        raise ValueError(f"cannot load the processor of {job.model!r}: {exc}") from exc
    pad = ensure_pad_token(processor.tokenizer, prefer=preset.pad_token)
    fmt = PRESETS["s1m"] if job.format == "auto" else get_format(job.format)
    freeze = job.freeze_vision or preset.freeze_vision
    examples = [vlm_example(r, processor, fmt, system=job.system, layout=preset.layout)
                for r in load_vlm_records(job.data)]
    over = count_over_block(examples, processor, preset.block_size)  # also opens every image once: fails early
    log(f"data: {len(examples)} image examples, {over} exceed the block size {preset.block_size} (their responses "
        f"are cut at the end); format {fmt.name}, layout {preset.layout}; pad token {pad!r}; vision frozen: {freeze}")
    try:
        model = AutoModelForImageTextToText.from_pretrained(job.model, dtype=_dtype(preset))
    except OSError as exc:
        raise ValueError(f"cannot load model {job.model!r}: {exc}") from exc
    ensure_pad_token(processor.tokenizer, model)
    trainer = train_vlm(model, processor, examples, preset, str(out / "_trainer"), freeze=freeze,
                        args=args, peft_config=vlm_peft_config(job.lora) if job.lora is not None else None)
    save_checkpoint(trainer, processor, out, job)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    summary = {"model": job.model, "data": job.data, "format": fmt.name, "preset": asdict(preset),
               "lora": asdict(job.lora) if job.lora else None, "freeze_vision": freeze,
               "over_block": over, "steps": trainer.state.global_step, "losses": losses}
    if trainer.is_world_process_zero():
        (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
        shutil.rmtree(out / "_trainer", ignore_errors=True)
    return summary
