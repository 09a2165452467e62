"""Text SFT end to end on a tiny local model: loss on the completion only (EOS included), loss falls,
the saved checkpoint generates through the transformers backend, LoRA merges into a plain checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import save_tiny

from s1.backends import load_backend
from s1.forcing.formats import PRESETS
from s1.forcing.policy import BudgetPolicy
from s1.train.data import build_rows
from s1.train.lora import LoraOptions
from s1.train.run import SUMMARY_FILE, TrainJob, run_text
from s1.train.sft import sft_config

RECORDS = [{"question": f"What is {a} + {b}?", "thinking": f"Let me think. {a} + {b} = {a + b}.",
            "answer": f"Final Answer: {a + b}"} for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)]]
FAST = {"learning_rate": 3e-3, "warmup_ratio": 0.0, "global_batch_size": 4, "per_device_batch_size": 4,
        "block_size": 256, "bf16": False, "gradient_checkpointing": False}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("base"), arch="llama")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return path


def test_labels_cover_exactly_the_completion_including_eos(base):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    tok = AutoTokenizer.from_pretrained(base)
    rows = build_rows(RECORDS[:2], tok, PRESETS["s1"])
    args = sft_config(PRESETS_TINY(), "/tmp/unused", max_steps=1)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(base), args=args,
                         train_dataset=Dataset.from_list(rows), processing_class=tok)
    examples = [trainer.train_dataset[i] for i in range(2)]
    batch = trainer.data_collator(examples)
    for i, row in enumerate(rows):
        prompt_ids = tok(row["prompt"], add_special_tokens=False)["input_ids"]
        completion_ids = tok(row["completion"], add_special_tokens=False)["input_ids"]
        labels = batch["labels"][i].tolist()
        expected = [-100] * len(prompt_ids) + completion_ids
        expected += [-100] * (len(labels) - len(expected))
        assert labels == expected
        assert completion_ids[-1] == tok.eos_token_id  # the stop is learnt, never masked as padding


def PRESETS_TINY():  # noqa: N802 - reads like the constant it stands for
    from s1.train.presets import get_preset

    return get_preset("tiny").replace(**FAST)


def test_trained_checkpoint_loads_into_the_backend_and_generates(base, data, tmp_path):
    out = tmp_path / "out"
    summary = run_text(TrainJob(model=str(base), data=str(data), output=str(out), preset="tiny", format="s1",
                                max_steps=12, logging_steps=1, preset_overrides=FAST), log=lambda m: None)
    assert summary["steps"] == 12
    assert summary["losses"][-1] < summary["losses"][0]
    assert summary["length_report"]["over_block"] == 0
    assert (out / "model.safetensors").exists() and (out / SUMMARY_FILE).exists()
    assert not (out / "_trainer").exists()
    backend = load_backend(str(out), format="s1")
    [gen] = backend.generate([_request("What is 1 + 2?")], BudgetPolicy(max_thinking_tokens=8, max_answer_tokens=4))
    assert gen.error is None and gen.thinking_tokens <= 8 and gen.text


def test_lora_merges_into_a_plain_checkpoint(base, data, tmp_path):
    pytest.importorskip("peft")
    out = tmp_path / "lora"
    run_text(TrainJob(model=str(base), data=str(data), output=str(out), preset="tiny", format="s1", max_steps=2,
                      logging_steps=1, lora=LoraOptions(r=4, alpha=8), preset_overrides=FAST), log=lambda m: None)
    assert not (out / "adapter_config.json").exists()  # merged: no adapter left to apply
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(out)
    original = AutoModelForCausalLM.from_pretrained(base)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    changed = [n for (n, p), (_, q) in zip(merged.named_parameters(), original.named_parameters(), strict=True)
               if not torch.equal(p, q)]
    assert changed and all("proj" in n for n in changed)  # adapters touched the linear layers only


def test_overflow_error_names_the_block_size(base, data, tmp_path):
    job = TrainJob(model=str(base), data=str(data), output=str(tmp_path / "x"), preset="tiny", format="s1",
                   max_steps=1, overflow="error", preset_overrides={**FAST, "block_size": 8})
    with pytest.raises(ValueError, match="exceed the block size 8"):
        run_text(job, log=lambda m: None)


def _request(question: str):
    from s1.forcing.request import Request

    return Request(id="q", messages=question)


def test_auto_format_trains_a_plain_instruct_model_in_the_s1_format(base):
    from transformers import AutoTokenizer

    from s1.train.run import training_format

    notes = []
    assert training_format("auto", AutoTokenizer.from_pretrained(base), notes.append).name == "s1"
    assert notes and "s1 format" in notes[0]
    assert training_format("think", None).name == "think"
