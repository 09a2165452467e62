"""`s1 train`: fine-tune on reasoning traces (TRL SFT), or retrain the embedded tiny model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from s1.cli.common import console, fail


def train(
    preset: Annotated[str, typer.Option(help="Hyperparameters: 's1' (s1-32B's), 's1m' (S1-M-7B's, with --vision) "
                                              "or 'tiny'; 'tiny' without --data retrains the tiny model.")] = "tiny",
    output: Annotated[Path, typer.Option(help="Where to save the trained model.")] = Path("tiny-reasoner"),
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many optimizer steps.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for data, initialisation and order (default: the "
                                                  "preset's; 42 for s1 / s1m, 0 for tiny).")] = None,
    model: Annotated[str | None, typer.Option(help="Hub id or local path of the model to fine-tune.")] = None,
    data: Annotated[str | None, typer.Option(help="`s1 curate` output, a JSONL / Parquet file with "
                                                  "question/thinking/answer, or a Hub dataset id.")] = None,
    format: Annotated[str, typer.Option(help="Reasoning format of the traces: s1, think, s1m or auto.")] = "auto",
    lora: Annotated[bool, typer.Option(help="Train LoRA adapters (PEFT), merged at the end.")] = False,
    qlora: Annotated[bool, typer.Option(help="LoRA on a 4-bit base (CUDA + bitsandbytes).")] = False,
    lora_r: Annotated[int, typer.Option(help="LoRA rank.")] = 16,
    control: Annotated[str | None, typer.Option(help="Conditional-control data: 'tokens' (budget in the "
                                                     "prompt) or 'steps' (countdown in the trace).")] = None,
    overflow: Annotated[str, typer.Option(help="Examples over the block size: truncate, drop or error.")] = "truncate",
    block_size: Annotated[int | None, typer.Option(help="Override the preset's block size (tokens).")] = None,
    system: Annotated[str | None, typer.Option(help="System prompt of every example (default: the chat "
                                                    "template's own, e.g. Qwen's, which s1 trained with).")] = None,
    vision: Annotated[bool, typer.Option(help="Vision-language SFT (Qwen2-VL; JSONL with images).")] = False,
    freeze_vision: Annotated[str | None, typer.Option(help="Vision side frozen: none, tower (not merger), all "
                                                          "(default: the preset's; none for s1m).")] = None,
    accelerate_config: Annotated[str | None, typer.Option(
        help="Write the fsdp or zero3 launch config for --model into --output; print the launch line.")] = None,
    nodes: Annotated[int, typer.Option(help="Machines, for --accelerate-config.")] = 1,
    gpus_per_node: Annotated[int, typer.Option(help="GPUs per machine, for --accelerate-config.")] = 8,
) -> None:
    """Fine-tune a model on reasoning traces (TRL SFT, loss on the response only), or retrain the tiny model."""
    if max_steps is not None and max_steps < 1:
        fail(f"--max-steps must be >= 1, got {max_steps}")
    if seed is not None and seed < 0:
        fail(f"--seed must be >= 0, got {seed}")
    from s1.backends.loading import quiet_hf_logging

    quiet_hf_logging()
    log = lambda m: console.print(m, highlight=False)  # noqa: E731
    if accelerate_config is not None:
        from s1.train.launch import accelerate_config as filled
        from s1.train.launch import launch_command, write_config

        try:
            path = write_config(filled(accelerate_config, model=model, nodes=nodes, gpus_per_node=gpus_per_node),
                                output / f"accelerate_{accelerate_config}.yaml")
        except ValueError as exc:
            fail(str(exc))
        if accelerate_config == "fsdp" and model is None:
            log("FSDP wraps Qwen2DecoderLayer (Qwen2.5, s1-32B); pass --model to wrap another architecture's layer")
        log(f"wrote {path}; on every node run:")
        sys.stdout.write(launch_command(path, ["--preset", preset, "--model", model or "MODEL", "--data",
                                               data or "DATA", "--output", "OUT"], nodes=nodes) + "\n")
        return
    if data is None:
        if preset != "tiny" or model is not None:
            fail("--data is required to fine-tune a model (only --preset tiny without --model trains from scratch)")
        from dataclasses import replace

        from s1.synthetic.tiny_model import TinyRecipe, train_tiny

        summary = train_tiny(output, replace(TinyRecipe(), seed=seed or 0), max_steps=max_steps, log=log)
        console.print(f"saved to {output} ({summary['steps']} steps, {summary['train_seconds']}s)")
        return
    if model is None:
        fail("--model is required with --data (a Hub id or a local path)")
    from s1.train.control_data import ControlSpec
    from s1.train.lora import LoraOptions
    from s1.train.run import TrainJob, run_text, run_vision

    overrides: dict = {} if seed is None else {"seed": seed}
    if block_size is not None:
        overrides["block_size"] = block_size
    try:
        job = TrainJob(model=model, data=data, output=str(output), preset=preset, format=format,
                       max_steps=max_steps, lora=LoraOptions(r=lora_r, alpha=2 * lora_r, qlora=qlora)
                       if lora or qlora else None, control=ControlSpec(control) if control else None,
                       overflow=overflow, system=system, vision=vision, freeze_vision=freeze_vision,
                       preset_overrides=overrides)
        job.resolved_preset()
        summary = (run_vision if vision else run_text)(job, log=log)
    except ValueError as exc:
        fail(str(exc))
    console.print(f"saved to {output} ({summary['steps']} steps, {summary.get('train_seconds', '?')}s)")
