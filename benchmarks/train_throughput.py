"""SFT throughput: trained tokens per second and peak memory, through the same TRL path `s1 train` uses.

`--arch tiny` is the embedded tiny model's recipe (its tokenizer, architecture, data and `tiny`
preset), for a laptop CPU. `--arch qwen2-0.5b` is Qwen2.5-0.5B's architecture with random weights
(built from a config, so no download) on s1-style long examples in the `s1` preset's layout (s1's
text, loss on the whole assistant turn), for a GPU. Tokens are the non-padding
tokens the trainer saw (TRL's `num_tokens`); the first `--warmup` steps are not timed.

    python benchmarks/train_throughput.py                           # tiny preset, CPU
    python benchmarks/train_throughput.py --arch qwen2-0.5b --steps 20 --seq 4096   # on a GPU
"""

from __future__ import annotations

import argparse
import random
import resource
import time
from typing import Any

import torch
from transformers import TrainerCallback

from s1.backends.loading import quiet_hf_logging
from s1.train.presets import get_preset
from s1.train.sft import to_prompt_completion, train_sft


class Clock(TrainerCallback):
    """Wall time and token count at the end of the warm-up, to time only the steady state."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.tokens0 = warmup, None, 0.0

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.warmup:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.start, self.tokens0 = time.perf_counter(), state.num_input_tokens_seen


def tiny_setup(steps: int) -> tuple[Any, Any, list[dict[str, str]], Any]:
    from s1.synthetic.tiny_model import FORMAT, TinyRecipe, answer_text, build_model, build_tokenizer, training_items

    recipe = TinyRecipe(train_items=steps * 16 + 64)
    items = training_items(recipe)
    tok = build_tokenizer([f"{it.question}\n{it.thinking}\n{answer_text(it)}" for it in items], recipe.vocab_size)
    rows = [to_prompt_completion({"question": it.question, "thinking": it.thinking, "answer": answer_text(it)},
                                 tok, FORMAT) for it in items]
    return build_model(tok, recipe), tok, rows, get_preset("tiny")


def qwen_setup(steps: int, seq: int, batch: int) -> tuple[Any, Any, list[dict[str, str]], Any]:
    """Qwen2.5-0.5B's shape, random weights, the tiny tokenizer's vocabulary padded to Qwen's size."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from s1.forcing.formats import PRESETS
    from s1.synthetic.tiny_model import build_tokenizer

    tok = build_tokenizer(["Let me think step by step. Wait, let me check."], 384)
    config = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                         tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16 if torch.cuda.is_available() else torch.float32)
    rng = random.Random(0)
    words = ["step", "so", "then", "check", "add", "Wait", "carry", "digit"]
    preset = get_preset("s1").replace(per_device_batch_size=batch, global_batch_size=batch, block_size=seq,
                                      epochs=1)
    rows = []
    for n in range(steps * batch + 8 * batch):
        thinking = " ".join(rng.choice(words) + str(rng.randint(0, 9)) for _ in range(seq // 3))
        rows.append(to_prompt_completion({"question": f"Question {n}?", "thinking": thinking, "answer": "Answer: 1"},
                                         tok, PRESETS["s1"], layout=preset.layout))
    return model, tok, rows, preset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=["tiny", "qwen2-0.5b"], default="tiny")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--seq", type=int, default=4096, help="block size for qwen2-0.5b")
    ap.add_argument("--batch", type=int, default=1, help="per-device batch for qwen2-0.5b")
    args = ap.parse_args()
    quiet_hf_logging()
    torch.manual_seed(0)
    if args.arch == "tiny":
        model, tok, rows, preset = tiny_setup(args.steps)
    else:
        model, tok, rows, preset = qwen_setup(args.steps, args.seq, args.batch)
    if torch.cuda.is_available():
        model = model.cuda()
        torch.cuda.reset_peak_memory_stats()
    clock = Clock(args.warmup)
    result = train_sft(model, tok, rows, preset, "/tmp/s1-train-throughput", max_steps=args.steps,
                       logging_steps=max(1, args.steps // 4), keep_trainer=True, callbacks=[clock],
                       include_num_input_tokens_seen="non_padding")
    trainer = result.trainer
    elapsed = time.perf_counter() - clock.start if clock.start else result.train_seconds
    tokens = trainer.state.num_input_tokens_seen - clock.tokens0
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    if torch.cuda.is_available():
        peak = f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    else:
        peak = f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"{args.arch} ({params:.1f}M params) on {device}: {args.steps - args.warmup} timed steps, "
          f"{tokens / elapsed:,.0f} trained tokens/s ({tokens:,.0f} tokens in {elapsed:.1f}s); {peak}; "
          f"loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}")


if __name__ == "__main__":
    main()
