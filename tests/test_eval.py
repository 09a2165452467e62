"""`s1 eval` end to end on a tiny local model and the real benchmark files: every (item, sample,
setting) stored once, resume after a kill loses and duplicates nothing, reports and plots come out of
the run directory, and bad arguments fail clearly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from s1.cli import app
from s1.eval.report import budget_and_ignores, summarize
from s1.eval.store import RunStore

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
runner = CliRunner()
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"benchmark files not found at {DATA}")


def keys(run_dir: Path) -> Counter:
    lines = (run_dir / "samples.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return Counter((r["task"], r["prompt_id"], r["sample_index"], r["setting"]) for r in rows)


def eval_args(model: Path, out: Path, *extra: str) -> list[str]:
    return ["eval", "--model", str(model), "--format", "s1", "--output", str(out), "--device", "cpu",
            "--max-answer-tokens", "4", *extra]


@needs_data
def test_eval_stores_every_sample_and_reports(tiny_dir: Path, tmp_path: Path):
    out = tmp_path / "run"
    result = runner.invoke(app, eval_args(tiny_dir, out, "--tasks", "math500,synthetic", "--data-dir", str(DATA),
                                          "--limit", "3", "--budgets", "2,6,auto", "--num-ignore", "0,1"))
    assert result.exit_code == 0, result.output
    got = keys(out)
    assert len(got) == 2 * 3 * 6 and set(got.values()) == {1}
    assert {k[3] for k in got} == {"think<=2", "think<=2,ignore1", "think<=6", "think<=6,ignore1", "think<=auto",
                                   "think<=auto,ignore1"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["tasks"] == ["math500", "synthetic"]
    assert set(manifest["datasets"]) == {"math500", "synthetic"}
    assert (out / "scaling.png").stat().st_size > 1000
    assert "accuracy vs thinking" in result.output and "Control" in result.output
    store = RunStore.open(out, read_only=True)
    records = list(store.records())
    store.close()
    for r in records:  # each sample says what was extracted and why it was graded so
        assert r.correct is not None and r.reason and r.gold is not None
        budget, _ = budget_and_ignores(r)
        if budget is not None:
            assert r.generation.thinking_tokens <= budget
    report = runner.invoke(app, ["report", str(out)])
    assert report.exit_code == 0 and "math500" in report.output and "think<=6,ignore1" in report.output
    stats = runner.invoke(app, ["stats", str(out / "samples.jsonl")])
    assert stats.exit_code == 0 and "avg total thinking tokens" in stats.output
    png = tmp_path / "fig.svg"
    assert runner.invoke(app, ["plot", str(out), "-o", str(png)]).exit_code == 0 and png.stat().st_size > 1000


def test_summary_matches_hand_computed_values():
    from s1.records import Generation, SampleRecord, Setting

    def rec(pid: str, setting: str, ok: bool, think: int, error: str | None = None) -> SampleRecord:
        g = Generation(prompt_id=pid, setting=setting, **Setting.from_label(setting).fields(), thinking_tokens=think,
                       thinking_closed=True, error=error,
                       cap_hit=think >= 8)
        return SampleRecord("t", g, correct=ok, extracted="1" if ok else None, reason="r", gold="1")

    rows = summarize([rec("a", "think<=8", True, 8), rec("b", "think<=8", False, 4), rec("c", "think<=8", True, 6,
                                                                                           error="boom")])
    (row,) = rows
    assert row.samples == 3 and row.errors == 1
    assert row.accuracy == pytest.approx(1 / 3)  # a failed sample counts as wrong
    assert row.thinking_tokens == pytest.approx(6.0)  # mean over the successful ones
    assert row.cap_hit == pytest.approx(0.5) and row.budget == 8 and row.num_ignore == 0


@needs_data
def test_resume_after_a_kill_loses_and_duplicates_nothing(tiny_dir: Path, tmp_path: Path):
    out = tmp_path / "run"
    args = eval_args(tiny_dir, out, "--tasks", "gsm8k", "--data-dir", str(DATA), "--limit", "24",
                     "--budgets", "4,30", "--num-ignore", "0", "--batch-size", "2", "--no-plot")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "s1.cli", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    samples = out / "samples.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if samples.exists() and len(samples.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = keys(out)
    assert 0 < sum(before.values()) < 48
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--resume" in again.output  # never silently mixed into an old run
    resumed = runner.invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    after = keys(out)
    assert len(after) == 48 and set(after.values()) == {1}
    assert f"({sum(before.values())} already done)" in resumed.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tasks", "aime26"], "unknown task 'aime26'"),
        (["--budgets", "0,512"], "budgets: each budget must be an integer >= 1"),
        (["--budgets", "abc"], "'abc' is not an integer"),
        (["--num-ignore", "-1"], "num_ignore"),
        (["--tasks", "math500", "--data-dir", "/nonexistent/dir"], "/nonexistent/dir"),
        (["--samples", "4"], "needs temperature > 0"),
        (["--control", "tokens=many"], "control value must be an integer"),
    ],
)
def test_bad_arguments_fail_clearly(tmp_path: Path, extra: list[str], message: str):
    result = runner.invoke(app, ["eval", "--output", str(tmp_path / "x"), *extra])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "x").exists()


def test_eval_with_no_model_runs_the_embedded_default(tmp_path: Path):
    out = tmp_path / "default"
    result = runner.invoke(app, ["eval", "--limit", "8", "--output", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tasks"] == ["synthetic"] and manifest["model"].startswith("tiny")
    assert len(keys(out)) == 8 * len(manifest["settings"]) and (out / "scaling.png").exists()
