"""Cost of a 6-point budget sweep: shared prefixes vs independent runs vs the single longest run.

One run, side by side, on the same model and held-out synthetic items, greedy. Prints wall times and
the ratios: shared sweep / longest run (target <= 1.3) and independent runs / shared sweep. Also checks
that the shared sweep's records equal the independent runs' token for token.

    python benchmarks/sweep_cost.py                       # the shipped tiny model, 200 items
    python benchmarks/sweep_cost.py --model DIR --items 100 --budgets 8,16,24,32,48,auto
"""

from __future__ import annotations

import argparse
import time

from s1.backends import load_backend
from s1.backends.base import Request
from s1.backends.loading import quiet_hf_logging
from s1.budget import BudgetPolicy
from s1.evaluate import parse_budgets
from s1.methods.sweep import longest_setting, run_sweep
from s1.synthetic.benchmark import heldout_items


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: the shipped tiny reasoning model")
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--budgets", default="8,16,24,32,48,auto")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-answer-tokens", type=int, default=16)
    args = ap.parse_args()
    quiet_hf_logging()
    backend = load_backend(args.model, format="s1", device="cpu", batch_size=args.batch_size)
    requests = [Request(it.id, messages=it.question) for it in heldout_items(args.items)]
    settings = [BudgetPolicy(max_thinking_tokens=b, max_answer_tokens=args.max_answer_tokens)
                for b in parse_budgets(args.budgets)]
    backend.generate(requests[: args.batch_size], settings[0])  # warm-up
    _, longest_s = timed(lambda: backend.generate(requests, longest_setting(settings)))
    sweep, shared_s = timed(lambda: run_sweep(backend, requests, settings))
    independent, independent_s = timed(lambda: [backend.generate(requests, p) for p in settings])
    same = all(
        a.token_ids == b.token_ids
        for j, gens in enumerate(independent)
        for a, b in zip(sweep.generations[j :: len(settings)], gens, strict=True)
    )
    print(f"{len(requests)} items x {len(settings)} budgets ({args.budgets}), greedy, batch {args.batch_size}")
    print(f"single longest run      {longest_s:8.1f} s")
    print(f"shared-prefix sweep     {shared_s:8.1f} s   (thinking {sweep.think_seconds:.1f} s + "
          f"{sweep.branches} branched answers {sweep.branch_seconds:.1f} s)")
    print(f"independent runs        {independent_s:8.1f} s")
    print(f"shared / longest        {shared_s / longest_s:8.2f}   (target <= 1.3)")
    print(f"independent / shared    {independent_s / shared_s:8.2f}")
    print(f"sweep == independent    {same}")


if __name__ == "__main__":
    main()
