"""Test-time scaling of the embedded tiny reasoning model on the held-out `synthetic` benchmark.

Greedy decoding. Prints accuracy and mean thinking tokens for a sweep of max_thinking_tokens (from far
too short to unconstrained) and for num_ignore in {0, 1, 2, 4} (unconstrained budget).

    python benchmarks/tiny_scaling.py                 # the shipped tiny model, 400 held-out items
    python benchmarks/tiny_scaling.py --model DIR --items 300
"""

from __future__ import annotations

import argparse
import time

from s1.backends import load_backend
from s1.backends.base import Request
from s1.backends.loading import quiet_hf_logging
from s1.budget import BudgetPolicy
from s1.synthetic.benchmark import heldout_items, score


def run(backend, items, policy: BudgetPolicy) -> tuple[float, float, float, float]:
    requests = [Request(it.id, messages=it.question) for it in items]
    t = time.perf_counter()
    gens = backend.generate(requests, policy)
    elapsed = time.perf_counter() - t
    failed = [g for g in gens if g.error]
    if failed:
        raise SystemExit(f"{len(failed)} generations failed, first: {failed[0].error}")
    correct = [score(it, g.answer) for it, g in zip(items, gens, strict=True)]
    acc = sum(correct) / len(items)
    think = sum(g.thinking_tokens for g in gens) / len(gens)
    ignores = sum(g.ignores_applied for g in gens) / len(gens)
    return acc, think, ignores, elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: the shipped tiny reasoning model")
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--budgets", default="4,16,32,64,128,256,auto")
    ap.add_argument("--num-ignore", default="0,1,2,4")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--family", default=None, help="one synthetic family (default: all five)")
    args = ap.parse_args()
    quiet_hf_logging()
    backend = load_backend(args.model, format="s1", device="cpu", batch_size=args.batch_size)
    items = heldout_items(args.items, family=args.family)
    answer = 16
    print(f"held-out synthetic items: {len(items)} ({args.family or 'all families'}, difficulties 1-2), greedy, "
          f"max_answer_tokens={answer}")
    print(f"{'setting':<22} {'accuracy':>9} {'thinking tokens':>16} {'ignores':>8} {'seconds':>8}")
    for b in args.budgets.split(","):
        budget = "auto" if b == "auto" else int(b)
        acc, think, ign, sec = run(backend, items, BudgetPolicy(max_thinking_tokens=budget, max_answer_tokens=answer))
        print(f"{'max_thinking=' + b:<22} {acc:>9.3f} {think:>16.1f} {ign:>8.2f} {sec:>8.1f}")
    for k in args.num_ignore.split(","):
        acc, think, ign, sec = run(backend, items, BudgetPolicy(num_ignore=int(k), max_answer_tokens=answer))
        print(f"{'num_ignore=' + k:<22} {acc:>9.3f} {think:>16.1f} {ign:>8.2f} {sec:>8.1f}")


if __name__ == "__main__":
    main()
