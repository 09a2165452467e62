"""Cost of a 6-point budget sweep: shared prefixes vs independent runs vs the single longest run.

One run, side by side, on the same model and held-out synthetic items, greedy; each timing is the
median of --repeats rounds in which the three take turns. Prints wall times and the ratios: shared
sweep / longest run (target <= 1.3) and independent runs / shared sweep; and the token floor: the
tokens a sweep must compute (the longest run's, plus each branch's tokens after the prefix it shares:
its forced cap and its answer) over the longest run's. Wall time can sit a little under the floor (a
branch's forced cap is computed as one block, cheaper per token than decoding) but not far: what the
floor counts is work no sweep can skip. Also checks that the shared sweep's records equal the
independent runs' token for token, and describes the branches (forced and sampled answer tokens).

    python benchmarks/sweep_cost.py                       # the shipped tiny model, 200 items
    python benchmarks/sweep_cost.py --model DIR --items 100 --budgets 8,16,24,32,48,auto
    python benchmarks/sweep_cost.py --num-ignore 2     # thinking extended twice: a longer-thinking regime
"""

from __future__ import annotations

import argparse
import statistics
import time

from s1.backends import load_backend
from s1.backends.loading import quiet_hf_logging
from s1.eval.run import parse_budgets
from s1.forcing.policy import BudgetPolicy
from s1.forcing.request import Request
from s1.forcing.sweep import longest_setting, run_sweep
from s1.synthetic.benchmark import heldout_items


def timed_rounds(jobs: dict, repeats: int) -> dict:
    """Each job's last result and median wall time; the jobs take turns in every round, so a slow spell of
    a shared machine falls on all of them alike."""
    times: dict = {name: [] for name in jobs}
    out: dict = {}
    for _ in range(repeats):
        for name, fn in jobs.items():
            start = time.perf_counter()
            out[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {name: (out[name], statistics.median(times[name])) for name in jobs}


def computed_tokens(gen) -> int:
    return gen.prompt_tokens + len(gen.token_ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: the shipped tiny reasoning model")
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--budgets", default="8,16,24,32,48,auto")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-answer-tokens", type=int, default=16)
    ap.add_argument("--num-ignore", type=int, default=0, help="ignores applied in every setting")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    quiet_hf_logging()
    backend = load_backend(args.model, format="s1", device="cpu", batch_size=args.batch_size)
    requests = [Request(it.id, messages=it.question) for it in heldout_items(args.items)]
    settings = [BudgetPolicy(max_thinking_tokens=b, max_answer_tokens=args.max_answer_tokens,
                             num_ignore=args.num_ignore) for b in parse_budgets(args.budgets)]
    backend.generate(requests[: args.batch_size], settings[0])  # warm-up
    runs = timed_rounds({
        "longest": lambda: backend.generate(requests, longest_setting(settings)),
        "shared": lambda: run_sweep(backend, requests, settings),
        "independent": lambda: [backend.generate(requests, p) for p in settings],
    }, args.repeats)
    (longest, longest_s), (sweep, shared_s), (independent, independent_s) = runs.values()
    long_tokens = sum(computed_tokens(g) for g in longest)
    branch_tokens = 0
    branched = []
    for i, gen in enumerate(longest):
        for g in sweep.generations[i * len(settings) : (i + 1) * len(settings)]:
            if g.token_ids != gen.token_ids:  # a branch: computed from where it parts ways
                shared = next((k for k, (a, b) in enumerate(zip(g.token_ids, gen.token_ids, strict=False))
                               if a != b), min(len(g.token_ids), len(gen.token_ids)))
                branch_tokens += len(g.token_ids) - shared
                branched.append(g)
    capped = sum(g.finish_reason == "length" for g in branched)
    same = all(
        a.token_ids == b.token_ids
        for j, gens in enumerate(independent)
        for a, b in zip(sweep.generations[j :: len(settings)], gens, strict=True)
    )
    print(f"{len(requests)} items x {len(settings)} budgets ({args.budgets}), num_ignore {args.num_ignore}, greedy, "
          f"batch {args.batch_size}, median of {args.repeats}")
    print(f"mean thinking tokens    {sum(g.thinking_tokens for g in longest) / len(longest):8.1f}   (longest setting)")
    print(f"single longest run      {longest_s:8.1f} s")
    print(f"shared-prefix sweep     {shared_s:8.1f} s   (thinking {sweep.think_seconds:.1f} s + "
          f"{sweep.branches} branched answers {sweep.branch_seconds:.1f} s)")
    print(f"independent runs        {independent_s:8.1f} s")
    print(f"shared / longest        {shared_s / longest_s:8.2f}   (target <= 1.3)")
    print(f"token floor             {(long_tokens + branch_tokens) / long_tokens:8.2f}   "
          f"(tokens a sweep must compute / the longest run's)")
    print(f"independent / shared    {independent_s / shared_s:8.2f}")
    if branched:
        forced = sum(g.answer_forced_tokens for g in branched) / len(branched)
        answer = sum(g.answer_tokens for g in branched) / len(branched)
        print(f"branches                {len(branched):8d}   (forced cap {forced:.1f} + sampled answer {answer:.1f} "
              f"tokens each; {capped / len(branched):.0%} run to the {args.max_answer_tokens}-token answer cap)")
    print(f"sweep == independent    {same}")


if __name__ == "__main__":
    main()
