"""Scaling curves like the s1 paper's Figure 1: accuracy against average thinking tokens (log2 x-axis),
one panel per task, one line per num_ignore value over the budgets."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from s1.eval.report import SettingSummary


def plot_scaling(rows: list[SettingSummary], path: str | Path, title: str | None = None) -> Path:
    """Write the figure to `path` (format from its suffix: .png, .pdf, .svg) and return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("nothing to plot: the run has no records")
    tasks = list(dict.fromkeys(r.task for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        curves: dict[int, list[SettingSummary]] = defaultdict(list)
        for r in rows:
            if r.task == task:
                curves[r.num_ignore].append(r)
        for ignores, curve in sorted(curves.items()):
            curve = sorted(curve, key=lambda r: r.thinking_tokens)
            xs = [max(r.thinking_tokens, 1.0) for r in curve]
            ys = [100 * r.accuracy for r in curve]
            errs = [[100 * (r.accuracy - r.ci_low) for r in curve], [100 * (r.ci_high - r.accuracy) for r in curve]]
            label = "budget forcing" if ignores == 0 else f"num_ignore={ignores}"
            ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=2, label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("average thinking tokens")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(task)
        ax.grid(alpha=0.3)
        if len(curves) > 1:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_methods(curves: list[Any], path: str | Path, title: str | None = None) -> Path:
    """Accuracy against thinking tokens and against all tokens generated per question (log2 x-axes),
    one line per method, two panels per task, like the s1 paper's sequential-vs-parallel figure;
    reference curves (pass@k) are dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not curves:
        raise ValueError("nothing to plot: the run has no method records")
    tasks = list(dict.fromkeys(c.task for c in curves))
    methods = list(dict.fromkeys(c.method for c in curves if not c.reference))
    colors = plt.get_cmap("tab20").colors
    markers = "os^vDP*Xph<>"
    fig, axes = plt.subplots(len(tasks), 2, figsize=(12, 4.6 * len(tasks)), squeeze=False)
    for row, task in zip(axes, tasks, strict=True):
        for ax, field, xlabel in ((row[0], "thinking", "thinking tokens per question"),
                                  (row[1], "tokens", "tokens generated per question")):
            for c in (c for c in curves if c.task == task):
                pts = sorted(c.points, key=lambda p: getattr(p, field))
                xs = [max(getattr(p, field), 1.0) for p in pts]
                ys = [100 * p.accuracy for p in pts]
                if c.reference:
                    style = {"linestyle": "--", "color": "0.6"}
                else:
                    i = methods.index(c.method)
                    style = {"marker": markers[i % len(markers)], "markersize": 4, "color": colors[i % len(colors)]}
                ax.plot(xs, ys, label=c.method, **style)
            ax.set_xscale("log", base=2)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("accuracy (%)")
            ax.set_title(task)
            ax.grid(alpha=0.3)
        row[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out
