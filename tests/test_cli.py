"""`s1 generate` end to end: the installed console script on a model saved to disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from s1.cli import app

runner = CliRunner()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "s1.cli", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_generate_json_records_from_a_prompts_file(tiny_dir, tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"id": "a", "question": "What is 2+3?"}\n\n{"id": "b", "prompt": "Sort 3 1 2"}\n')
    res = run_cli("generate", "--model", str(tiny_dir), "--format", "s1", "--prompts-file", str(prompts),
                  "--max-thinking-tokens", "7", "--max-answer-tokens", "3", "--samples", "2",
                  "--temperature", "0.8", "--seed", "1", "--json", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(r["prompt_id"], r["sample_index"]) for r in rows] == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert all(r["thinking_tokens"] <= 7 for r in rows)
    assert rows[0]["prompt"].endswith("<|im_start|>assistant\n<|im_start|>think\n")
    assert rows[2]["prompt"] == "Sort 3 1 2<|im_start|>think\n"  # raw prompt: opener appended


def test_generate_human_output_marks_forced_parts(tiny_dir):
    res = run_cli("generate", "--model", str(tiny_dir), "--format", "s1", "-p", "What is 2+3?",
                  "--max-thinking-tokens", "4", "--max-answer-tokens", "2", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    assert "[cap]" in res.stdout and "thinking 4 sampled" in res.stdout and "cap hit" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "x", "--max-thinking-tokens", "-5"], "max_thinking_tokens must be an integer >= 0"),
        (["-p", "x", "--max-thinking-tokens", "lots"], "integer >= 0 or 'auto'"),
        (["-p", "x", "--min-thinking-tokens", "9", "--max-thinking-tokens", "4"], "min_thinking_tokens (9)"),
        (["-p", "x", "--min-thinking-mode", "maybe"], "suppress, wait"),
        (["-p", "x", "--ignore-str", ""], "ignore_strings"),
        (["-p", "x", "--temperature", "-1"], "temperature"),
        ([], "give --prompt"),
        (["--prompts-file", "/nonexistent.jsonl"], "not found"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(args, message):
    res = runner.invoke(app, ["generate", *args])
    assert res.exit_code == 2
    assert message in res.output


def test_malformed_prompts_file_names_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok"}\n{"question": \n')
    res = runner.invoke(app, ["generate", "--prompts-file", str(bad)])
    assert res.exit_code == 2 and "bad.jsonl:2: not valid JSON" in res.output
    both = tmp_path / "both.jsonl"
    both.write_text('{"question": "a", "prompt": "b"}\n')
    res = runner.invoke(app, ["generate", "--prompts-file", str(both)])
    assert res.exit_code == 2 and "exactly one of" in res.output


def test_unknown_model_path_format_and_device_are_named(tiny_dir):
    res = runner.invoke(app, ["generate", "-p", "x", "--model", "./no/such/model"])
    assert res.exit_code == 2 and "model path not found" in res.output
    res = runner.invoke(app, ["generate", "-p", "x", "--model", str(tiny_dir), "--format", "r9"])
    assert res.exit_code == 2 and "unknown format 'r9'" in res.output
    res = runner.invoke(app, ["generate", "-p", "x", "--model", str(tiny_dir), "--device", "tpu"])
    assert res.exit_code == 2 and "unknown device 'tpu'" in res.output


def test_a_hub_id_is_not_mistaken_for_a_missing_path():
    # offline mode is read at import time, so it goes to a fresh process; tests never touch the network
    res = run_cli("generate", "-p", "x", "--model", "no-such-org/no-such-model", "--device", "cpu",
                  env={"HF_HUB_OFFLINE": "1"})
    assert res.returncode == 2
    assert "cannot load model 'no-such-org/no-such-model'" in res.stderr and "path not found" not in res.stderr
