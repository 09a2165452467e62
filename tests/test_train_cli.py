"""`s1 train` for any model: fine-tune from the command line, write launch configs, refuse bad options."""

from __future__ import annotations

import json

import yaml
from tiny import save_tiny
from typer.testing import CliRunner

from s1.cli import app

runner = CliRunner()


def test_fine_tune_a_local_model_on_jsonl_with_step_control(tmp_path):
    base = save_tiny(tmp_path / "base", arch="llama")
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"question": "1 + 1?", "thinking": "One.\n\nTwo.", "answer": "Final Answer: 2"}) + "\n")
    out = tmp_path / "out"
    res = runner.invoke(app, ["train", "--preset", "tiny", "--model", str(base), "--data", str(data), "--format",
                              "s1", "--output", str(out), "--max-steps", "1", "--control", "steps",
                              "--block-size", "128", "--system", "Be brief."])
    assert res.exit_code == 0, res.output
    assert "0 exceed the block size 128" in res.output
    summary = json.loads((out / "s1_train.json").read_text())
    assert summary["control"]["kind"] == "steps" and summary["preset"]["block_size"] == 128
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    assert summary["system"] == "Be brief."


def test_accelerate_config_for_a_model(tmp_path):
    base = save_tiny(tmp_path / "base", arch="qwen2")
    res = runner.invoke(app, ["train", "--accelerate-config", "fsdp", "--model", str(base), "--nodes", "2",
                              "--gpus-per-node", "8", "--preset", "s1", "--output", str(tmp_path)])
    assert res.exit_code == 0, res.output
    config = yaml.safe_load((tmp_path / "accelerate_fsdp.yaml").read_text())
    assert config["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"] == "Qwen2DecoderLayer"
    assert "--machine_rank $NODE_RANK" in res.output and "--preset s1" in res.output


def test_bad_options_are_named(tmp_path):
    res = runner.invoke(app, ["train", "--preset", "s1"])
    assert res.exit_code != 0 and "--data is required" in res.output
    res = runner.invoke(app, ["train", "--data", "x.jsonl"])
    assert res.exit_code != 0 and "--model is required" in res.output
    res = runner.invoke(app, ["train", "--model", "m", "--data", "x.jsonl", "--control", "class"])
    assert res.exit_code != 0 and "control kind" in res.output
    res = runner.invoke(app, ["train", "--model", str(tmp_path), "--data", str(tmp_path / "none.jsonl"),
                              "--preset", "s2"])
    assert res.exit_code != 0 and "allowed: s1, s1m, tiny" in res.output
