"""The `s1` command. Subcommands map to the package's modules; this file only parses and prints."""

from __future__ import annotations

import dataclasses
import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from s1.backends.base import Request
from s1.budget import AUTO, MIN_THINKING_MODES, BudgetPolicy, PolicyError, SamplingSettings
from s1.formats import PRESETS

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Test-time scaling for reasoning models: budget forcing, evaluation, curation, SFT.")
console = Console(stderr=False)
err = Console(stderr=True)

SEGMENT_STYLES = {"think": "", "ignore": "bold yellow", "close": "bold cyan", "cap": "bold red",
                  "answer": "green", "stop": "dim"}


def fail(message: str) -> None:
    """Exit with a clear message (status 2, as for bad usage)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def parse_budget(value: str) -> int | str:
    if value == AUTO:
        return AUTO
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter(f"must be an integer >= 0 or 'auto', got {value!r}") from None


def read_prompts_file(path: Path) -> list[Request]:
    """JSONL: one object per line with `prompt` (raw text), `messages` (chat) or `question` (user turn);
    `id` and `images` (a list of image paths or URLs, placed before the text) optional. Every bad line
    is reported by number."""
    if not path.is_file():
        fail(f"--prompts-file not found: {path}")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            fail(f"{path}:{n}: not valid JSON ({exc.msg})")
        if not isinstance(row, dict):
            fail(f"{path}:{n}: each line must be a JSON object")
        rid = str(row.get("id", f"{path.stem}-{n}"))
        keys = [k for k in ("prompt", "messages", "question") if k in row]
        if len(keys) != 1:
            fail(f"{path}:{n}: give exactly one of 'prompt', 'messages' or 'question'")
        key = keys[0]
        images = row.get("images", [])
        if not isinstance(images, list) or not all(isinstance(x, str) for x in images):
            fail(f"{path}:{n}: 'images' must be a list of image paths or URLs")
        try:
            if key == "prompt":
                out.append(Request(rid, prompt=str(row["prompt"]), images=tuple(images)))
            else:
                out.append(Request(rid, messages=row[key], system=row.get("system"), images=tuple(images)))
        except ValueError as exc:
            fail(f"{path}:{n}: {exc}")
    if not out:
        fail(f"--prompts-file {path} holds no prompts")
    return out


def show(gen) -> None:
    body = Text()
    for seg in gen.segments:
        label = "" if seg.kind in ("think", "answer", "stop") else f"[{seg.kind}]"
        if seg.kind == "stop":
            continue
        body.append(label, style="dim")
        body.append(seg.text, style=SEGMENT_STYLES.get(seg.kind, ""))
    stats = (f"thinking {gen.thinking_tokens} sampled + {gen.thinking_forced_tokens} forced "
             f"(budget {gen.thinking_budget}{', cap hit' if gen.cap_hit else ''}) · ignores {gen.ignores_applied} · "
             f"answer {gen.answer_tokens} sampled + {gen.answer_forced_tokens} forced · {gen.finish_reason} · "
             f"{gen.wall_time_s:.1f}s")
    if gen.error:
        console.print(Panel(Text(gen.error, style="red"), title=f"{gen.prompt_id}: failed", border_style="red"))
        return
    console.print(Panel(body, title=gen.prompt_id))
    console.print(Text(stats, style="dim"))
    console.print(Text("answer: ", style="bold") + Text(gen.answer or "(none)", style="green"))


BackendOpt = Annotated[str, typer.Option(
    help="hf (transformers in this process), vllm (a vLLM engine in this process) or openai (an OpenAI-compatible "
         "server).")]
BaseUrlOpt = Annotated[str | None, typer.Option(help="--backend openai: API base, e.g. http://localhost:8000/v1.")]
ApiKeyOpt = Annotated[str | None, typer.Option(envvar="OPENAI_API_KEY",
                                               help="--backend openai: bearer token (env OPENAI_API_KEY).")]
TokenizerOpt = Annotated[str, typer.Option(
    help="--backend openai: auto, server (/tokenize), none (usage counts) or a local tokenizer path.")]
ConcurrencyOpt = Annotated[int, typer.Option(help="--backend openai: samples in flight.")]
TPOpt = Annotated[int, typer.Option(help="--backend vllm: tensor-parallel GPUs.")]
DPOpt = Annotated[int, typer.Option(help="--backend vllm: data-parallel ranks (one process each).")]
MaxLenOpt = Annotated[int | None, typer.Option(help="--backend vllm: context length (default: the model's).")]
GpuMemOpt = Annotated[float, typer.Option(help="--backend vllm: fraction of GPU memory for weights + KV cache.")]
MaxSeqsOpt = Annotated[int | None, typer.Option(help="--backend vllm: sequences per engine step.")]
PrefixOpt = Annotated[bool, typer.Option(help="--backend vllm: prefix caching (sweeps share thinking through it).")]
RemoteCodeOpt = Annotated[bool, typer.Option(help="--backend vllm: run the model repository's own code.")]


def _engine_opts(backend: str, seed: int | None, **opts) -> dict:
    """vLLM engine options for --backend vllm; with another backend they must stay at their defaults."""
    defaults = dict(tensor_parallel_size=1, data_parallel_size=1, max_model_len=None, gpu_memory_utilization=0.9,
                    max_num_seqs=None, enable_prefix_caching=True, trust_remote_code=False)
    if backend == "vllm":
        import os

        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # vLLM logs to stdout; keep --json clean
        return {**opts, "seed": seed or 0}
    changed = [k for k, v in opts.items() if v != defaults[k]]
    if changed:
        fail(f"--{changed[0].replace('_', '-')} is a vLLM engine option; add --backend vllm")
    return {}


def _load(backend: str, model: str | None, base_url: str | None, api_key: str | None, tokenizer: str,
          concurrency: int, format: str, **hf_kwargs):
    """A backend from the CLI's options: the model in this process, or a server for --backend openai."""
    from s1.backends import load_backend

    if backend != "openai":
        return load_backend(model, backend=backend, format=format, **hf_kwargs)
    if not base_url:
        fail("--backend openai needs --base-url (e.g. http://localhost:8000/v1)")
    try:
        backend_ = load_backend(model, backend="openai", base_url=base_url, api_key=api_key, tokenizer=tokenizer,
                                concurrency=concurrency, format=format)
    except ImportError as exc:
        fail(str(exc))
    err.print(f"[dim]{base_url}: {backend_.counting}[/]", highlight=False)
    return backend_


@app.command()
def generate(
    prompt: Annotated[list[str] | None, typer.Option("--prompt", "-p", help="A question (repeatable).")] = None,
    prompts_file: Annotated[Path | None, typer.Option(help="JSONL with prompt / messages / question per line.")] = None,
    model: Annotated[str | None, typer.Option(help="Hub id, dir, .gguf or smollm2 (default: tiny model).")] = None,
    gguf_file: Annotated[str | None, typer.Option(help="GGUF file name inside --model.")] = None,
    format: Annotated[str, typer.Option(help=f"Reasoning format: auto, {', '.join(PRESETS)}.")] = "auto",
    max_thinking_tokens: Annotated[str, typer.Option(help="Thinking cap in tokens, or 'auto'.")] = AUTO,
    min_thinking_tokens: Annotated[int, typer.Option(help="Minimum thinking tokens.")] = 0,
    min_thinking_mode: Annotated[str, typer.Option(help="Below the minimum: suppress | wait.")] = "suppress",
    num_ignore: Annotated[int, typer.Option(help="Times to replace a natural end of thinking.")] = 0,
    ignore_str: Annotated[list[str] | None, typer.Option(help="Ignore string (repeatable: cycles).")] = None,
    max_answer_tokens: Annotated[int | None, typer.Option(
        help="Answer cap in tokens (default: 32 for the tiny model, 1024 otherwise).")] = None,
    temperature: Annotated[float, typer.Option(help="Thinking temperature (0 = greedy).")] = 0.0,
    top_p: Annotated[float, typer.Option(help="Thinking top-p.")] = 1.0,
    top_k: Annotated[int, typer.Option(help="Thinking top-k (0 = off).")] = 0,
    answer_temperature: Annotated[float | None, typer.Option(help="Answer temperature (default: thinking's).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for sampling.")] = None,
    samples: Annotated[int, typer.Option(help="Samples per prompt.")] = 1,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    raw_prompt: Annotated[bool, typer.Option(help="Use --prompt as raw text, no chat template.")] = False,
    image: Annotated[list[str] | None, typer.Option(
        help="Image path or URL for every --prompt, placed before the text (repeatable; vision-language "
             "models such as Qwen2-VL).")] = None,
    mode: Annotated[str, typer.Option(help="auto | single (one pass) | multi (rounds).")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Sequences per batch.")] = 16,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N, mps.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16.")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="One JSON record per line on stdout.")] = False,
    backend: BackendOpt = "hf",
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    tokenizer: TokenizerOpt = "auto",
    concurrency: ConcurrencyOpt = 16,
    tensor_parallel_size: TPOpt = 1,
    data_parallel_size: DPOpt = 1,
    max_model_len: MaxLenOpt = None,
    gpu_memory_utilization: GpuMemOpt = 0.9,
    max_num_seqs: MaxSeqsOpt = None,
    enable_prefix_caching: PrefixOpt = True,
    trust_remote_code: RemoteCodeOpt = False,
) -> None:
    """Generate with budget forcing: cap, extend (num-ignore) or floor the thinking."""
    if (prompt is None) == (prompts_file is None):
        fail("give --prompt (repeatable) or --prompts-file, not both and not neither")
    if min_thinking_mode not in MIN_THINKING_MODES:
        fail(f"--min-thinking-mode must be one of {', '.join(MIN_THINKING_MODES)}, got {min_thinking_mode!r}")
    if samples < 1:
        fail(f"--samples must be >= 1, got {samples}")
    try:
        think = SamplingSettings(temperature=temperature, top_p=top_p, top_k=top_k, seed=seed)
        answer = None if answer_temperature is None else SamplingSettings(
            temperature=answer_temperature, top_p=top_p, top_k=top_k, seed=seed)
        policy = BudgetPolicy(
            max_thinking_tokens=parse_budget(max_thinking_tokens), min_thinking_tokens=min_thinking_tokens,
            min_thinking_mode=min_thinking_mode, num_ignore=num_ignore,
            ignore_strings=tuple(ignore_str) if ignore_str else None,
            max_answer_tokens=max_answer_tokens or (32 if model is None else 1024), thinking=think, answer=answer,
        )
    except (PolicyError, typer.BadParameter) as exc:
        fail(str(exc))

    if image and (raw_prompt or prompts_file is not None):
        fail("--image goes with --prompt chat questions; a raw prompt cannot hold images, and a --prompts-file "
             "line names its own 'images'")
    if prompts_file is not None:
        base = read_prompts_file(prompts_file)
    else:
        base = [Request(f"prompt-{i}", prompt=p) if raw_prompt else Request(
                    f"prompt-{i}", messages=p, system=system, images=tuple(image or ()))
                for i, p in enumerate(prompt or [])]
    requests = [dataclasses.replace(r, sample_index=k) for r in base for k in range(samples)]

    from s1.backends.loading import quiet_hf_logging

    quiet_hf_logging()
    try:
        with err.status("loading model...") if not json_out else nullcontext():
            engine = _load(backend, model, base_url, api_key, tokenizer, concurrency, format, gguf_file=gguf_file,
                           device=device, dtype=dtype, mode=mode, batch_size=batch_size, **_engine_opts(
                               backend, seed, tensor_parallel_size=tensor_parallel_size,
                               data_parallel_size=data_parallel_size, max_model_len=max_model_len,
                               gpu_memory_utilization=gpu_memory_utilization, max_num_seqs=max_num_seqs,
                               enable_prefix_caching=enable_prefix_caching, trust_remote_code=trust_remote_code))
    except (ValueError, PolicyError) as exc:
        fail(str(exc))
    gens = engine.generate(requests, policy)
    failed = 0
    for g in gens:
        failed += g.error is not None
        if json_out:
            sys.stdout.write(g.to_json() + "\n")
        else:
            show(g)
    if failed:
        err.print(f"[red]{failed} of {len(gens)} generations failed[/]")
        raise typer.Exit(1)


@app.command()
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


TINY_BUDGETS = "8,16,24,32,48,auto"
MODEL_BUDGETS = "512,1024,2048,4096,8192,auto"


def _open_store(run_dir: Path, resume: bool, manifest: dict | None = None):
    from s1.runs import RunStore, RunStoreError

    try:
        if manifest is None:
            return RunStore.open(run_dir, read_only=True)
        return RunStore.open_or_create(run_dir, manifest, resume=resume)
    except (RunStoreError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))


def _report_run(run_dir: Path, plot: Path | None) -> None:
    from s1.report import category_summaries, render, render_categories, summarize, sweep_summaries

    store = _open_store(run_dir, resume=False)
    if store.manifest.get("kind") == "compare":
        _report_compare(store, run_dir, plot)
        return
    records = list(store.records())
    rows = summarize(records)
    store.close()
    if not rows:
        fail(f"{run_dir} holds no samples yet")
    render(rows, sweep_summaries(rows), console)
    categories = category_summaries(records)
    if categories:
        render_categories(categories, console)
    if plot is not None:
        from s1.plot import plot_scaling

        console.print(f"plot: {plot_scaling(rows, plot, title=str(run_dir.name))}")


def _compare_curves(store, run_dir: Path) -> list:
    """A comparison run's method curves (`s1.methods.summary`), read from its store (closed here)."""
    from s1.methods.summary import method_curves, method_points

    how = store.manifest.get("parameters", {}).get("aggregate", "mean")
    points = method_points(store.records(), how)
    store.close()
    if not points:
        fail(f"{run_dir} holds no samples yet")
    return method_curves(points)


def _report_compare(store, run_dir: Path, plot: Path | None) -> None:
    from s1.methods.summary import equal_compute
    from s1.report import render_methods

    curves = _compare_curves(store, run_dir)
    render_methods(curves, equal_compute(curves), console)
    if plot is not None:
        from s1.plot import plot_methods

        console.print(f"plot: {plot_methods(curves, plot, title=str(run_dir.name))}")


@app.command("eval")
def eval_(
    model: Annotated[str | None, typer.Option(help="Hub id, dir, .gguf or smollm2 (default: tiny model).")] = None,
    tasks: Annotated[str, typer.Option(help="Comma-separated tasks (see `s1 tasks`).")] = "synthetic",
    data_dir: Annotated[str | None, typer.Option(help="Local file or directory with the task data.")] = None,
    limit: Annotated[int | None, typer.Option(help="First N items of each task.")] = None,
    budgets: Annotated[str | None, typer.Option(
        help=f"Thinking caps to sweep, e.g. 512,1024,auto (default: {TINY_BUDGETS} for the tiny model, "
             f"{MODEL_BUDGETS} otherwise).")] = None,
    num_ignore: Annotated[str | None, typer.Option(
        help="num_ignore values to sweep, e.g. 0,1,2 (default: 0,1,2 for the tiny model, 0 otherwise).")] = None,
    ignore_str: Annotated[list[str] | None, typer.Option(help="Ignore string (repeatable: cycles).")] = None,
    min_thinking_tokens: Annotated[int, typer.Option(help="Minimum thinking tokens.")] = 0,
    max_answer_tokens: Annotated[int | None, typer.Option(
        help="Answer cap in tokens (default: 32 for the tiny model, 1024 otherwise).")] = None,
    samples: Annotated[int, typer.Option(help="Samples per item (needs --temperature > 0).")] = 1,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0 = greedy).")] = 0.0,
    top_p: Annotated[float, typer.Option(help="Top-p.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed for sampling and GPQA choice order.")] = 0,
    control: Annotated[str | None, typer.Option(
        help="Conditional-control prompt: tokens=N, steps=N, class=long or class=short.")] = None,
    format: Annotated[str, typer.Option(help=f"Reasoning format: auto, {', '.join(PRESETS)}.")] = "auto",
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    output: Annotated[Path | None, typer.Option(help="Run directory (default: runs/<model>-<tasks>).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --output.")] = False,
    plot: Annotated[bool, typer.Option(help="Write scaling.png into the run directory.")] = True,
    batch_size: Annotated[int, typer.Option(help="Sequences per batch.")] = 32,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N, mps.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16.")] = "auto",
    backend: BackendOpt = "hf",
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    tokenizer: TokenizerOpt = "auto",
    concurrency: ConcurrencyOpt = 16,
    tensor_parallel_size: TPOpt = 1,
    data_parallel_size: DPOpt = 1,
    max_model_len: MaxLenOpt = None,
    gpu_memory_utilization: GpuMemOpt = 0.9,
    max_num_seqs: MaxSeqsOpt = None,
    enable_prefix_caching: PrefixOpt = True,
    trust_remote_code: RemoteCodeOpt = False,
) -> None:
    """Evaluate a model on benchmarks over a budget sweep (thinking once per sample), store every sample,
    and print accuracy vs thinking tokens with the s1 paper's Control / Scaling / Performance."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from s1.evaluate import EvalConfig, evaluate, load_items, manifest_for, parse_budgets, parse_ints, run_dir_default
    from s1.tasks import HubUnavailableError

    tiny = model is None
    try:
        config = EvalConfig(
            model=model, backend=backend, tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()),
            data_dir=data_dir,
            limit=limit, budgets=parse_budgets(budgets or (TINY_BUDGETS if tiny else MODEL_BUDGETS)),
            num_ignore=parse_ints(num_ignore or ("0,1,2" if tiny else "0"), "num_ignore"),
            ignore_strings=tuple(ignore_str) if ignore_str else None, min_thinking_tokens=min_thinking_tokens,
            max_answer_tokens=max_answer_tokens or (32 if tiny else 1024), samples=samples,
            temperature=temperature, top_p=top_p, seed=seed, control=control, format=format, system=system,
        )
        items = load_items(config)
    except (ValueError, PolicyError, FileNotFoundError, HubUnavailableError) as exc:
        fail(str(exc))
    run_dir = output or run_dir_default(config)

    from s1.backends.loading import quiet_hf_logging

    quiet_hf_logging()
    try:
        with err.status("loading model..."):
            engine = _load(backend, model, base_url, api_key, tokenizer, concurrency, format, device=device,
                           dtype=dtype, batch_size=batch_size, **_engine_opts(
                               backend, seed, tensor_parallel_size=tensor_parallel_size,
                               data_parallel_size=data_parallel_size, max_model_len=max_model_len,
                               gpu_memory_utilization=gpu_memory_utilization, max_num_seqs=max_num_seqs,
                               enable_prefix_caching=enable_prefix_caching, trust_remote_code=trust_remote_code))
    except (ValueError, PolicyError) as exc:
        fail(str(exc))
    store = _open_store(run_dir, resume, manifest_for(config, engine, items))
    n_items = sum(len(v) for v in items.values())
    console.print(f"{config.model or 'tiny reasoning model'} on {', '.join(config.tasks)}: {n_items} items x "
                  f"{config.samples} sample(s) x {len(config.settings())} settings -> {run_dir}", highlight=False)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=err, transient=True) as bar:
            task_id = bar.add_task("samples", total=None)

            progress = evaluate(config, engine, store, items, chunk_items=max(1, batch_size // config.samples),
                                on_chunk=lambda n: bar.advance(task_id, n),
                                on_start=lambda p: bar.update(task_id, total=p.total, completed=p.done_before))
        store.finish()
    finally:
        store.close()
    console.print(f"generated {progress.generated} samples ({progress.done_before} already done), "
                  f"{progress.errors} failed; thinking {progress.think_seconds:.0f}s + branched answers "
                  f"{progress.branch_seconds:.0f}s", highlight=False)
    _report_run(run_dir, run_dir / "scaling.png" if plot else None)


TINY_COMPARE = {"budgets": TINY_BUDGETS, "num_ignore": "0,1,2", "max_answer_tokens": 16, "sample_budget": "128",
                "rejection_budgets": "24,32,48", "rebase_thinking_tokens": 128, "max_step_tokens": 64,
                "controls": "tokens=16,tokens=32,steps=2,steps=4,class=short,class=long", "step_tokens": 12}
MODEL_COMPARE = {"budgets": MODEL_BUDGETS, "num_ignore": "0,1,2", "max_answer_tokens": 1024, "sample_budget": "auto",
                 "rejection_budgets": "1024,2048,4096", "rebase_thinking_tokens": 8192, "max_step_tokens": 512,
                 "controls": "tokens=1024,tokens=2048,tokens=4096,steps=16,steps=32,class=short,class=long",
                 "step_tokens": 128}


@app.command()
def compare(
    model: Annotated[str | None, typer.Option(help="Hub id, dir, .gguf or smollm2 (default: tiny model).")] = None,
    tasks: Annotated[str, typer.Option(help="Comma-separated tasks (see `s1 tasks`).")] = "synthetic",
    data_dir: Annotated[str | None, typer.Option(help="Local file or directory with the task data.")] = None,
    limit: Annotated[int | None, typer.Option(help="First N items of each task.")] = None,
    methods: Annotated[str, typer.Option(
        help="Comma-separated: budget_forcing, voting (majority voting and best-of-N), rebase, rejection, control."
    )] = "budget_forcing,voting,rebase,rejection,control",
    budgets: Annotated[str | None, typer.Option(help="Budget forcing: thinking caps (greedy).")] = None,
    num_ignore: Annotated[str | None, typer.Option(help="Budget forcing: ignore counts at the largest cap.")] = None,
    samples: Annotated[int, typer.Option(help="Voting / best-of-N: samples per question (maj@k for k=1,2,4..).")] = 8,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (voting, REBASE, rejection).")] = 1.0,
    top_p: Annotated[float, typer.Option(help="Top-p for sampling.")] = 1.0,
    sample_budget: Annotated[str | None, typer.Option(help="Thinking cap of each sample, or 'auto'.")] = None,
    verifier: Annotated[list[str] | None, typer.Option(
        help="confidence (the policy's own step probabilities), orm:PATH, prm:PATH or judge:BASE_URL "
             "(repeatable; REBASE uses the first).")] = None,
    aggregate: Annotated[str, typer.Option(help="Step scores -> one: last, min, prod or mean.")] = "mean",
    step_separator: Annotated[str, typer.Option(help="Where steps end: \\n, \\n\\n or a marker like 'Step'.")] = "\\n",
    step_tag: Annotated[str, typer.Option(help="prm: the tag after each step (one token).")] = " ки",
    judge_model: Annotated[str, typer.Option(help="judge: the model name at the endpoint.")] = "gpt-4o-mini",
    rebase_widths: Annotated[str, typer.Option(help="REBASE: tree widths W.")] = "2,4,8",
    rebase_temperature: Annotated[float, typer.Option(help="REBASE: softmax temperature of the width split.")] = 0.2,
    rebase_select: Annotated[str, typer.Option(help="REBASE final answer: weighted (majority) or best (leaf).")] = (
        "weighted"),
    max_depth: Annotated[int, typer.Option(help="REBASE: steps per path.")] = 32,
    max_step_tokens: Annotated[int | None, typer.Option(help="REBASE: tokens per step.")] = None,
    rebase_thinking_tokens: Annotated[int | None, typer.Option(help="REBASE: thinking tokens per path.")] = None,
    rejection_budgets: Annotated[str | None, typer.Option(help="Rejection sampling: thinking budgets.")] = None,
    max_attempts: Annotated[int, typer.Option(help="Rejection sampling: attempts per question.")] = 8,
    controls: Annotated[str | None, typer.Option(
        help="Conditional control prompts, e.g. tokens=16,steps=2,class=short,class=long.")] = None,
    control_forcing: Annotated[bool, typer.Option(help="Also run token/step control with budget forcing.")] = True,
    step_tokens: Annotated[int | None, typer.Option(help="Step control + forcing: thinking tokens per step.")] = None,
    max_answer_tokens: Annotated[int | None, typer.Option(help="Answer cap in tokens.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling.")] = 0,
    format: Annotated[str, typer.Option(help=f"Reasoning format: auto, {', '.join(PRESETS)}.")] = "auto",
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    output: Annotated[Path | None, typer.Option(help="Run directory (default: runs/<model>-<tasks>-compare).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --output.")] = False,
    plot: Annotated[bool, typer.Option(help="Write compare.png into the run directory.")] = True,
    batch_size: Annotated[int, typer.Option(help="Sequences per batch.")] = 64,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N, mps.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16.")] = "auto",
) -> None:
    """Compare test-time scaling methods at equal compute: budget forcing, conditional control, majority
    voting, best-of-N, REBASE and rejection sampling on the same questions, into one resumable run; prints
    accuracy vs tokens per method with Control / Scaling / Performance and writes the figure."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from s1.evaluate import load_items, parse_budgets, parse_ints, run_dir_default
    from s1.methods.compare import CompareConfig, manifest_for, run_compare
    from s1.methods.steps import parse_separator
    from s1.methods.verifiers import load_verifier
    from s1.tasks import HubUnavailableError

    d = TINY_COMPARE if model is None else MODEL_COMPARE
    try:
        config = CompareConfig(
            model=model, tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()), data_dir=data_dir,
            limit=limit, methods=tuple(m.strip() for m in methods.split(",") if m.strip()),
            budgets=parse_budgets(budgets or d["budgets"]),
            num_ignore=parse_ints(num_ignore or d["num_ignore"], "num_ignore"), samples=samples,
            temperature=temperature, top_p=top_p, sample_budget=parse_budgets(sample_budget or d["sample_budget"])[0],
            verifiers=tuple(verifier or ("confidence",)), aggregate=aggregate,
            step_separator=parse_separator(step_separator), step_tag=step_tag,
            rebase_widths=parse_ints(rebase_widths, "rebase_widths"), rebase_temperature=rebase_temperature,
            rebase_select=rebase_select, max_depth=max_depth, max_step_tokens=max_step_tokens or d["max_step_tokens"],
            rebase_thinking_tokens=rebase_thinking_tokens or d["rebase_thinking_tokens"],
            rejection_budgets=parse_ints(rejection_budgets or d["rejection_budgets"], "rejection_budgets"),
            max_attempts=max_attempts, controls=tuple(c.strip() for c in (controls or d["controls"]).split(",")
                                                      if c.strip()),
            control_forcing=control_forcing, step_tokens=step_tokens or d["step_tokens"],
            max_answer_tokens=max_answer_tokens or d["max_answer_tokens"], seed=seed, format=format, system=system,
        )
        items = load_items(config)
    except (ValueError, PolicyError, FileNotFoundError, HubUnavailableError) as exc:
        fail(str(exc))
    run_dir = output or run_dir_default(config).with_name(run_dir_default(config).name + "-compare")

    from s1.backends import load_backend
    from s1.backends.loading import quiet_hf_logging

    quiet_hf_logging()
    try:
        with err.status("loading model..."):
            engine = load_backend(model, device=device, dtype=dtype, format=format, batch_size=batch_size)
            verifiers = [load_verifier(v, engine, step_tag=config.step_tag, device=device, judge_model=judge_model)
                         for v in config.verifiers] if {"voting", "rebase"} & set(config.methods) else []
    except (ValueError, PolicyError) as exc:
        fail(str(exc))
    store = _open_store(run_dir, resume, manifest_for(config, engine, items))
    n_items = sum(len(v) for v in items.values())
    console.print(f"{config.model or 'tiny reasoning model'} on {', '.join(config.tasks)}: {n_items} items, methods "
                  f"{', '.join(config.methods)} -> {run_dir}", highlight=False)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=err, transient=True) as bar:
            task_id = bar.add_task("records", total=None)

            def advance(method: str, n: int) -> None:
                bar.update(task_id, advance=n, description=method)

            progress = run_compare(config, engine, store, items, verifiers, chunk_items=batch_size,
                                   on_records=advance,
                                   on_start=lambda p: bar.update(task_id, total=p.total, completed=p.done_before))
        store.finish()
    finally:
        store.close()
    spent = ", ".join(f"{m} {s:.0f}s" for m, s in progress.seconds.items())
    console.print(f"generated {progress.generated} records ({progress.done_before} already done), "
                  f"{progress.errors} failed; {spent}", highlight=False)
    _report_run(run_dir, run_dir / "compare.png" if plot else None)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A run directory written by `s1 eval`.")]) -> None:
    """Accuracy +- CI and thinking tokens per task and setting; Control / Scaling / Performance per sweep."""
    _report_run(run_dir, None)


@app.command()
def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `s1 eval`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Image file (.png, .pdf, .svg).")] = Path(
        "scaling.png"),
) -> None:
    """Accuracy vs average thinking tokens per task (the s1 paper's Figure 1)."""
    from s1.plot import plot_scaling
    from s1.report import summarize

    store = _open_store(run_dir, resume=False)
    if store.manifest.get("kind") == "compare":
        from s1.plot import plot_methods

        console.print(f"plot: {plot_methods(_compare_curves(store, run_dir), output, title=run_dir.name)}")
        return
    rows = summarize(store.records())
    store.close()
    if not rows:
        fail(f"{run_dir} holds no samples yet")
    console.print(f"plot: {plot_scaling(rows, output, title=run_dir.name)}")


@app.command()
def stats(path: Annotated[Path, typer.Argument(help="samples.jsonl of a run (or the run directory).")]) -> None:
    """Thinking-token statistics per task and setting, as s1's compute_sample_stats.py prints them."""
    from collections import defaultdict

    from s1.metrics import thinking_stats
    from s1.runs import SampleRecord

    file = path / "samples.jsonl" if path.is_dir() else path
    if not file.is_file():
        fail(f"no samples file at {file}")
    groups: dict[tuple[str, str], list[SampleRecord]] = defaultdict(list)
    for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = SampleRecord.from_dict(json.loads(line))
        except (json.JSONDecodeError, ValueError, TypeError) as exc:
            fail(f"{file}:{n}: not a sample record ({exc})")
        groups[rec.task, rec.generation.setting].append(rec)
    for (task, setting), recs in groups.items():
        gens = [r.generation for r in recs]
        budget = gens[0].thinking_budget if all(g.thinking_budget == gens[0].thinking_budget for g in gens) else None
        st = thinking_stats(gens, budget=budget, correct=[bool(r.correct) for r in recs])
        console.print(f"[bold]{task} · {setting}[/]")
        for line in st.lines():
            console.print("  " + line, highlight=False)


@app.command()
def serve(
    model: Annotated[str | None, typer.Option(help="Hub id, dir, .gguf or smollm2 (default: tiny model).")] = None,
    gguf_file: Annotated[str | None, typer.Option(help="GGUF file name inside --model.")] = None,
    format: Annotated[str, typer.Option(help=f"Reasoning format: auto, {', '.join(PRESETS)}.")] = "auto",
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    api_key: Annotated[str | None, typer.Option(envvar="S1_API_KEY",
                                                help="Require 'Authorization: Bearer KEY' (env S1_API_KEY).")] = None,
    served_model_name: Annotated[str | None, typer.Option(help="Model id clients send (default: from --model).")] \
    = None,
    reasoning_effort: Annotated[str | None, typer.Option(
        help="Thinking budgets per reasoning_effort, e.g. low=512,medium=2048,high=8192.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Largest max_tokens a request may ask (default: context).")] \
    = None,
    max_n: Annotated[int, typer.Option(help="Largest n (choices per request).")] = 16,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body.")] = 1 << 20,
    batch_size: Annotated[int, typer.Option(help="Sequences per engine batch.")] = 32,
    batch_window_ms: Annotated[float, typer.Option(
        help="Requests arriving within this gap of each other share an engine batch.")] = 10.0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N, mps.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16.")] = "auto",
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    backend: Annotated[str, typer.Option(help="hf (transformers) or vllm (budget-forced requests only).")] = "hf",
) -> None:
    """Serve a model over an OpenAI-compatible API with budget forcing (see `s1.server`)."""
    from s1.backends import load_backend
    from s1.backends.loading import quiet_hf_logging

    try:
        from s1.server import ServeConfig, default_limits, parse_effort
        from s1.server import serve as run_server
    except ImportError as exc:
        fail(str(exc))

    if backend not in ("hf", "vllm"):
        fail(f"--backend for s1 serve must be hf or vllm (a model in this process), got {backend!r}")
    for name, value, low in (("--port", port, 0), ("--max-n", max_n, 1), ("--max-body-bytes", max_body_bytes, 1),
                             ("--max-tokens", max_tokens or 1, 1), ("--batch-window-ms", batch_window_ms, 0)):
        if value < low:
            fail(f"{name} must be >= {low}, got {value}")
    quiet_hf_logging()
    try:
        effort = parse_effort(reasoning_effort) if reasoning_effort else None
        local = {"gguf_file": gguf_file, "device": device, "dtype": dtype} if backend == "hf" else {}
        with err.status("loading model..."):
            engine = load_backend(model, backend=backend, format=format, batch_size=batch_size, **local)
    except (ValueError, PolicyError, ImportError) as exc:
        fail(str(exc))
    name = served_model_name or ("tiny-reasoner" if model is None else model.rstrip("/").split("/")[-1])
    config = ServeConfig(name, default_limits(engine, model is None, max_tokens, effort, max_n), api_key=api_key,
                         max_body_bytes=max_body_bytes, batch_window_s=batch_window_ms / 1000)
    err.print(f"serving {name} ({engine.format.name} format) on http://{host}:{port}/v1"
              f"{' (API key required)' if api_key else ''}", highlight=False)
    run_server(engine, config, host=host, port=port, log_level=log_level)


@app.command("tasks")
def tasks_() -> None:
    """List the benchmark tasks and where each loads from."""
    from s1.tasks import TASKS

    for name, task in TASKS.items():
        source = task.hub_id or "built in"
        console.print(f"[bold]{name}[/]  {source}  ({task.grader})  {task.description}", highlight=False)


curate_app = typer.Typer(no_args_is_help=True, help="The s1K data pipeline: collect, decontaminate, traces, "
                         "featurize, select (each reads the previous stage's files in the config's out_dir).")
app.add_typer(curate_app, name="curate")
CurateConfigArg = Annotated[str, typer.Argument(help="A config file (TOML/JSON) or a shipped config name (s1k).")]
OutDirOpt = Annotated[Path | None, typer.Option(help="Override the config's out_dir.")]


def _curate(config: str, out_dir: Path | None, stages: tuple[str, ...], shard: str = "0/1") -> None:
    from s1.curate import CurateError, load_config, report_lines, run_stage
    from s1.curate.pipeline import model_factories

    try:
        index, count = (int(x) for x in shard.split("/"))
    except ValueError:
        fail(f"--shard must be i/n (e.g. 0/4), got {shard!r}")
    try:
        cfg = load_config(config, out_dir)
        models = model_factories(cfg)  # each model is built once, when a stage first needs it
        for stage in stages:
            with err.status(f"curate: {stage}..."):
                report = run_stage(cfg, stage, shard=(index, count), models=models)
            for line in report_lines(stage, report):
                console.print(line, highlight=False)
    except CurateError as exc:
        fail(str(exc))


@curate_app.command("collect")
def curate_collect(config: CurateConfigArg, out_dir: OutDirOpt = None) -> None:
    """Read every source into pool.jsonl (one schema: question, solution, cot_type, source_type, metadata)."""
    _curate(config, out_dir, ("collect",))


@curate_app.command("decontaminate")
def curate_decontaminate(config: CurateConfigArg, out_dir: OutDirOpt = None) -> None:
    """Drop items sharing a word 8-gram with the eval sets, then exact duplicates -> clean.jsonl, removed.jsonl."""
    _curate(config, out_dir, ("decontaminate",))


@curate_app.command("traces")
def curate_traces(config: CurateConfigArg, out_dir: OutDirOpt = None, shard: Annotated[str, typer.Option(
        help="This worker's share i/n of the questions (several workers, one cache file each).")] = "0/1") -> None:
    """Generate traces and attempts (teacher and weaker models), cached by question; resumable."""
    _curate(config, out_dir, ("traces",), shard)


@curate_app.command("featurize")
def curate_featurize(config: CurateConfigArg, out_dir: OutDirOpt = None) -> None:
    """Correctness (math-verify, optional LLM judge), MSC domain, trace length -> features.jsonl."""
    _curate(config, out_dir, ("featurize",))


@curate_app.command("select")
def curate_select(config: CurateConfigArg, out_dir: OutDirOpt = None) -> None:
    """Quality, difficulty and diversity selection (seeded) -> selected.jsonl/.parquet and summary.json."""
    _curate(config, out_dir, ("select",))


@curate_app.command("run")
def curate_run(config: CurateConfigArg, out_dir: OutDirOpt = None) -> None:
    """Every stage in order; a rerun reuses cached traces and LLM replies."""
    from s1.curate import STAGES

    _curate(config, out_dir, STAGES)


@app.callback()
def main() -> None:
    """s1: simple test-time scaling."""


if __name__ == "__main__":
    app()
