"""Training data: sources and layouts, control formatting, the overflow report, a pad token that is not EOS."""

from __future__ import annotations

import json

import pytest
from tiny import build_model, build_tokenizer

from s1.forcing.formats import PRESETS
from s1.tasks.prompts import Control, build_prompt
from s1.train.control_data import ControlSpec, apply_control
from s1.train.data import apply_overflow, build_rows, load_training_records, normalise_row
from s1.train.padding import ensure_pad_token

RECORD = {"question": "What is 2 + 3?", "thinking": "First 2.\n\nThen add 3.\n\nSo 5.", "answer": "Final Answer: 5"}


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def test_local_jsonl_in_both_layouts(tmp_path):
    path = tmp_path / "d.jsonl"
    s1k = {"question": "Q", "thinking_trajectories": ["T"], "attempt": "42"}
    path.write_text(json.dumps(RECORD) + "\n" + json.dumps(s1k) + "\n")
    records = load_training_records(str(path))
    assert records[0] == RECORD
    assert records[1] == {"question": "Q", "thinking": "T", "answer": "Answer: 42"}


def test_curate_output_directory_means_its_selection(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = {"question": "Q", "thinking_trajectories": ["T"], "attempt": "7", "cot_type": "math", "text": "..."}
    pq.write_table(pa.Table.from_pylist([row]), tmp_path / "selected.parquet")
    (tmp_path / "selected.jsonl").write_text(json.dumps({**row, "attempt": "other"}) + "\n")
    assert load_training_records(str(tmp_path)) == [{"question": "Q", "thinking": "T", "answer": "Answer: 7"}]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither a saved dataset nor an `s1 curate` output"):
        load_training_records(str(tmp_path / "empty"))


def test_s1k_1_1_columns_map_to_deepseek_traces():
    row = {"question": "Q", "deepseek_thinking_trajectory": "DT", "deepseek_attempt": "DA",
           "gemini_thinking_trajectory": "GT", "gemini_attempt": "GA"}
    assert normalise_row(row)["thinking_trajectories"] == ["DT"] and normalise_row(row)["attempt"] == "DA"


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="training data not found"):
        load_training_records(str(tmp_path / "nope.jsonl"))


def test_rows_in_any_format_end_with_the_closer_answer_and_eos(tok):
    for name in ("s1", "think", "s1m"):
        fmt = PRESETS[name]
        [row] = build_rows([RECORD], tok, fmt)
        assert row["prompt"].endswith(fmt.think_open)
        assert row["completion"] == "First 2.\n\nThen add 3.\n\nSo 5.\n" + fmt.think_close + "Final Answer: 5<|im_end|>"


def test_system_prompt_goes_into_every_prompt(tok):
    [row] = build_rows([RECORD], tok, PRESETS["s1"], system="Be brief.")
    assert row["prompt"].startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n")


def test_bad_record_names_its_row_and_field(tok):
    with pytest.raises(ValueError, match="record 1: .*'thinking'"):
        build_rows([RECORD, {"question": "q", "answer": "a"}], tok, PRESETS["s1"])


def test_token_conditional_states_the_budget_as_evaluation_asks(tok):
    out = apply_control(RECORD, ControlSpec("tokens", bucket=10), tok)
    n = len(tok(RECORD["thinking"], add_special_tokens=False)["input_ids"])
    budget = -(-n // 10) * 10
    assert out["question"] == build_prompt(RECORD["question"], Control("tokens", budget))
    assert out["thinking"] == RECORD["thinking"]


def test_step_conditional_counts_down_in_the_trace(tok):
    out = apply_control(RECORD, ControlSpec("steps"), tok)
    assert out["question"] == build_prompt(RECORD["question"], Control("steps", 3))
    assert out["thinking"] == "(3 steps left)\nFirst 2.\n\n(2 steps left)\nThen add 3.\n\n(1 steps left)\nSo 5."
    merged = apply_control(RECORD, ControlSpec("steps", step_tokens=10_000), tok)
    assert merged["question"].endswith("Think for up to 1 steps.")


def test_control_spec_validates():
    with pytest.raises(ValueError, match="control kind"):
        ControlSpec("class")
    with pytest.raises(ValueError, match="marker"):
        ControlSpec("steps", marker="steps left")


def test_overflow_report_and_policies(tok):
    rows = build_rows([RECORD, {**RECORD, "thinking": "long " * 200}], tok, PRESETS["s1"])
    kept, report = apply_overflow(rows, tok, 100, "truncate")
    assert len(kept) == 2 and report.over_block == 1 and report.longest > 100
    assert "1 exceed the block size 100 and are cut at the end" in report.describe()
    kept, report = apply_overflow(rows, tok, 100, "drop")
    assert kept == rows[:1] and report.dropped == 1
    with pytest.raises(ValueError, match="1 examples exceed the block size 100"):
        apply_overflow(rows, tok, 100, "error")
    with pytest.raises(ValueError, match="allowed: truncate, drop, error"):
        apply_overflow(rows, tok, 100, "cut")


def test_pad_token_is_never_eos():
    tok = build_tokenizer()
    tok.pad_token = tok.eos_token  # the classic mistake
    assert ensure_pad_token(tok) == "<|endoftext|>" and tok.pad_token_id != tok.eos_token_id


def test_a_new_pad_token_grows_the_embedding_when_needed(monkeypatch):
    from s1.train import padding

    tok = build_tokenizer()
    tok.pad_token = tok.eos_token
    size = len(tok)
    model = build_model(tok, "llama", pad_vocab_to=1)
    model.resize_token_embeddings(size)  # no spare rows, as in a checkpoint sized to its tokenizer
    monkeypatch.setattr(padding, "RESERVED_PADS", ())  # no reserved pad token in this vocabulary
    assert ensure_pad_token(tok, model) == "<|pad|>"
    assert tok.pad_token_id == size and model.get_input_embeddings().num_embeddings == size + 1
    assert model.config.pad_token_id == tok.pad_token_id != tok.eos_token_id


def test_hub_dataset_rows_go_through_the_same_mapping(monkeypatch):
    import datasets

    row = {"question": "Q", "deepseek_thinking_trajectory": "DT", "deepseek_attempt": "42"}
    seen = {}

    def fake_load(name, split):
        seen["args"] = (name, split)
        return datasets.Dataset.from_list([row])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    records = load_training_records("simplescaling/s1K-1.1")
    assert seen["args"] == ("simplescaling/s1K-1.1", "train")
    assert records == [{"question": "Q", "thinking": "DT", "answer": "Answer: 42"}]


def test_unreachable_hub_dataset_says_so():
    with pytest.raises(ValueError, match="cannot load Hub dataset 'nobody/no-such-set'"):
        load_training_records("nobody/no-such-set")
