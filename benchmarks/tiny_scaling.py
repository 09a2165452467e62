"""Test-time scaling of the embedded tiny reasoning model on the held-out `synthetic` benchmark.

Greedy decoding. Prints accuracy and mean thinking tokens for a sweep of max_thinking_tokens (from far
too short to effectively unconstrained, num_ignore 0) and for num_ignore in {0, 1, 2, 4} (at the
largest budget). One shared-prefix sweep computes every row
(each equals an independent run; see tests/test_sweep.py).

    python benchmarks/tiny_scaling.py                 # the shipped tiny model, 400 held-out items
    python benchmarks/tiny_scaling.py --model DIR --items 300
"""

from __future__ import annotations

import argparse
import time

from s1.backends import load_backend
from s1.backends.loading import quiet_hf_logging
from s1.eval.run import parse_budgets, parse_ints
from s1.forcing.policy import BudgetPolicy
from s1.forcing.request import Request
from s1.forcing.sweep import run_sweep
from s1.grading import grade
from s1.synthetic.benchmark import heldout_items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: the shipped tiny reasoning model")
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--budgets", default="4,8,16,24,32,48,64,256")
    ap.add_argument("--ignore-budget", default="256", help="thinking cap of the num_ignore rows")
    ap.add_argument("--num-ignore", default="0,1,2,4")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-answer-tokens", type=int, default=16)
    args = ap.parse_args()
    quiet_hf_logging()
    backend = load_backend(args.model, format="s1", device="cpu", batch_size=args.batch_size)
    items = heldout_items(args.items)
    budgets, ignores = parse_budgets(args.budgets), parse_ints(args.num_ignore, "num_ignore")
    rows = [("max_thinking=" + str(b), BudgetPolicy(max_thinking_tokens=b, max_answer_tokens=args.max_answer_tokens))
            for b in budgets]
    cap = parse_budgets(args.ignore_budget)[0]
    rows += [("num_ignore=" + str(k), BudgetPolicy(max_thinking_tokens=cap, num_ignore=k,
                                                   max_answer_tokens=args.max_answer_tokens)) for k in ignores]
    settings = list(dict.fromkeys(p for _, p in rows))
    started = time.perf_counter()
    result = run_sweep(backend, [Request(it.id, messages=it.question) for it in items], settings)
    seconds = time.perf_counter() - started
    failed = [g for g in result.generations if g.error]
    if failed:
        raise SystemExit(f"{len(failed)} generations failed, first: {failed[0].error}")
    families = sorted({it.family for it in items})
    levels = sorted({it.difficulty for it in items})
    print(f"held-out synthetic items: {len(items)} ({', '.join(families)}; difficulty {levels}), greedy, "
          f"max_answer_tokens={args.max_answer_tokens}; one sweep in {seconds:.0f}s")
    print(f"{'setting':<18} {'accuracy':>9} {'thinking tokens':>16} {'ignores':>8} {'cap hit':>8}")
    for name, policy in rows:
        j = settings.index(policy)
        gens = result.generations[j :: len(settings)]
        acc = sum(grade("synthetic", g.answer, it.answer, {"family": it.family}).correct
                  for it, g in zip(items, gens, strict=True)) / len(items)
        think = sum(g.thinking_tokens + g.thinking_forced_tokens for g in gens) / len(gens)
        ign = sum(g.ignores_applied for g in gens) / len(gens)
        cap = sum(g.cap_hit for g in gens) / len(gens)
        print(f"{name:<18} {acc:>9.3f} {think:>16.1f} {ign:>8.2f} {cap:>8.0%}")


if __name__ == "__main__":
    main()
