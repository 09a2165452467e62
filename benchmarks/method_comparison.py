"""Test-time scaling methods compared at equal compute on the tiny reasoning model's synthetic benchmark.

Runs `s1 compare` (budget forcing, conditional control with and without forcing, majority voting,
best-of-N and weighted best-of-N, REBASE, rejection sampling) on held-out `synthetic` items, prints
accuracy against tokens generated per question for every method, the s1 paper's Control / Scaling /
Performance per method and which method is best within each compute budget, and writes the figure
(`compare.png` in the run directory). The verifier is the policy's own step confidence (no reward
model is trained for the synthetic tasks); pass `--verifier prm:PATH` through to use a real PRM.
Resumable: rerun with `--resume` after an interruption.

    python benchmarks/method_comparison.py                        # 100 items, runs/method-comparison
    python benchmarks/method_comparison.py --items 200 --threads 2 -- --samples 16
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=100, help="held-out synthetic items")
    ap.add_argument("--output", default="runs/method-comparison", help="run directory")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (the tiny model's matrices are too small to gain from more)")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted run")
    ap.add_argument("extra", nargs="*", help="more `s1 compare` options, after `--`")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from s1.cli import app

    started = time.perf_counter()
    app(["compare", "--limit", str(args.items), "--output", args.output, "--device", "cpu",
         *(["--resume"] if args.resume else []), *args.extra], standalone_mode=False)
    print(f"wall time {time.perf_counter() - started:.0f}s ({args.threads} thread(s))")


if __name__ == "__main__":
    main()
