"""`s1 compare` end to end on the tiny reasoning model with a tiny PRM made locally: every method writes
its records to the run store, a run cut short resumes with exactly what is missing (and the same
results), and the report, table and figure come out of the run directory."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForTokenClassification
from typer.testing import CliRunner

from s1.cli import app
from s1.eval.compare import CompareConfig
from s1.models import TINY_MODEL_DIR

runner = CliRunner()


@pytest.fixture(scope="module")
def prm(tmp_path_factory) -> Path:
    tok = AutoTokenizer.from_pretrained(str(TINY_MODEL_DIR))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512, num_labels=2,
                      pad_token_id=tok.pad_token_id)
    path = tmp_path_factory.mktemp("prm")
    LlamaForTokenClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def args(out: Path, prm: Path, *extra: str) -> list[str]:
    return ["compare", "--limit", "2", "--output", str(out), "--device", "cpu", "--budgets", "16,48",
            "--num-ignore", "0,1", "--samples", "2", "--verifier", f"prm:{prm}", "--verifier", "confidence",
            "--step-tag", "#", "--rebase-widths", "2", "--rebase-thinking-tokens", "48", "--rejection-budgets", "6",
            "--max-attempts", "2", "--controls", "tokens=16,class=short,class=long", "--batch-size", "8", *extra]


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines() if line.strip()]


def test_every_method_writes_to_the_store_and_resumes(tmp_path: Path, prm: Path):
    out = tmp_path / "run"
    result = runner.invoke(app, args(out, prm))
    assert result.exit_code == 0, result.output
    first = rows(out)
    keys = Counter((r["task"], r["prompt_id"], r["sample_index"], r["setting"]) for r in first)
    assert set(keys.values()) == {1}
    per_item = {"think<=16", "think<=48", "think<=48,ignore1", "sample:think<=128", "rebase:W=2",
                "rejection:think<=6", "control:tokens=16", "control:tokens=16,think<=16", "control:class=short",
                "control:class=long"}
    assert {k[3] for k in keys} == per_item
    assert len(keys) == 2 * (len(per_item) + 1)  # two samples per item under the sample setting
    methods = Counter(r["meta"]["method"] for r in first)
    assert methods == {"budget_forcing": 6, "sample": 4, "rebase": 2, "rejection": 2, "control": 8}
    for r in first:
        assert r["correct"] is not None and r["reason"]
        meta = r["meta"]
        if meta["method"] == "sample":
            assert set(meta["scores"]) == {"prm", "confidence"} and meta["canonical"] == r["extracted"]
        if meta["method"] == "rebase":
            assert max(meta["widths"]) <= 2 and meta["generated_tokens"] >= r["thinking_tokens"]
        if meta["method"] == "rejection":  # no tiny-model trace thinks in 6 tokens: the cap stops it
            assert meta["attempts"] == 2 and not meta["accepted"] and not r["correct"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "compare" and manifest["status"] == "finished"
    assert (out / "compare.png").stat().st_size > 1000
    for name in ("budget forcing", "majority voting", "weighted best-of-N (prm)", "REBASE (prm)",
                 "rejection sampling", "token-conditional + budget forcing", "class-conditional", "best"):
        assert name in result.output

    # cut the run short: lose the last records and tear the last kept line, as a kill mid-write would
    lines = (out / "samples.jsonl").read_text().splitlines(keepends=True)
    (out / "samples.jsonl").write_text("".join(lines[:9]) + lines[9][:20])
    again = runner.invoke(app, args(out, prm))
    assert again.exit_code == 2 and "--resume" in again.output  # never silently mixed into an old run
    with pytest.warns(UserWarning, match="cutting off 20 bytes of an unfinished last line"):
        resumed = runner.invoke(app, [*args(out, prm), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "(9 already done)" in resumed.output
    second = rows(out)
    assert len(second) == len(first)
    before = {(r["prompt_id"], r["sample_index"], r["setting"]): r for r in first}
    for r in second:  # seeded sampling: what was redone is what the first run made
        old = before[r["prompt_id"], r["sample_index"], r["setting"]]
        assert (r["text"], r["correct"], r["meta"]) == (old["text"], old["correct"], old["meta"]), r["setting"]
    changed = runner.invoke(app, [*args(out, prm, "--samples", "3"), "--resume"])
    assert changed.exit_code == 2 and "parameters.samples" in changed.output

    report = runner.invoke(app, ["report", str(out)])
    assert report.exit_code == 0 and "REBASE (prm)" in report.output
    svg = tmp_path / "fig.svg"
    assert runner.invoke(app, ["plot", str(out), "-o", str(svg)]).exit_code == 0 and svg.stat().st_size > 1000


@pytest.mark.parametrize(("kw", "message"), [
    ({"methods": ("voting", "beam")}, "methods must be among"),
    ({"temperature": 0.0}, "temperature must be > 0 for voting"),
    ({"verifiers": ("oracle",)}, "verifier must be one of"),
    ({"rebase_widths": (0,)}, "rebase_widths: give integers >= 1"),
    ({"controls": ("tokens=many",)}, "control value must be an integer"),
    ({"aggregate": "max"}, "aggregate must be one of"),
    ({"sample_budget": -1}, "max_thinking_tokens must be an integer >= 0 or .auto."),
])
def test_bad_config_fails_naming_the_field(kw, message):
    with pytest.raises(ValueError, match=message):
        CompareConfig(**kw)


def test_bad_cli_arguments_fail_before_loading_anything(tmp_path: Path):
    result = runner.invoke(app, ["compare", "--output", str(tmp_path / "x"), "--methods", "voting,beam"])
    assert result.exit_code == 2 and "methods must be among" in result.output
    assert not (tmp_path / "x").exists()
