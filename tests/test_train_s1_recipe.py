"""`--preset s1` is s1's sft.py and `--preset s1m` S1-M-7B's recipe: the warmup is 5% (S1-M: 3%, rounded
down) of the optimizer steps on the pinned transformers range; an s1K row becomes s1's text
(tokenization.py) with s1's loss mask (DataCollatorForCompletionOnlyLM from `<|im_start|>assistant\\n`,
think opener and end of turn included), checked against both written out here; s1m trains a tiny
Qwen2-VL saved to disk, loaded with a stock install (no torchvision)."""

from __future__ import annotations

import json
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
import torch
from tiny import build_model, build_tokenizer

from s1.forcing.formats import PRESETS
from s1.train.presets import get_preset
from s1.train.sft import curated_record, sft_config, to_prompt_completion, tokenize_chat_rows
from s1.train.warmup import make_trainer, warmup_steps

ROOT = Path(__file__).resolve().parents[1]
# Qwen2.5-Instruct's chat template without its tool-calling branch: a default system turn, ChatML turns
QWEN25 = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
S1K_ROW = {"question": "What is 3 + 4?", "thinking_trajectories": ["Let me think. 3 + 4 = 7.", "Wait, check: 7."],
           "attempt": "The total is 7.", "solution": "7", "cot_type": "math", "source_type": "test"}


def qwen_tokenizer():
    tok = build_tokenizer()
    tok.chat_template = QWEN25
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<|fim_pad|>"]})
    return tok


# ---------------------------------------------------------------------------------------------- warmup


def test_transformers_and_trl_are_in_the_pinned_range():
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {Requirement(r).name: Requirement(r).specifier for r in
            project["dependencies"] + project["optional-dependencies"]["train"]}
    assert pins["transformers"].contains(version("transformers")) and "<6" in str(pins["transformers"])
    assert pins["trl"].contains(version("trl")) and "<2" in str(pins["trl"])


def _trainer(preset, tmp_path, steps: int):
    from datasets import Dataset
    from trl import SFTTrainer

    tok = qwen_tokenizer()
    rows = tokenize_chat_rows([to_prompt_completion(curated_record(S1K_ROW), tok, PRESETS["s1"], layout="chat")], tok)
    args = sft_config(preset, str(tmp_path), max_steps=steps)
    return make_trainer(SFTTrainer, preset, model=build_model(tok, "llama"), args=args,
                        train_dataset=Dataset.from_list(rows * 4), processing_class=tok)


@pytest.mark.parametrize(("name", "steps", "warmup"), [("s1", 100, 5), ("s1", 30, 2), ("s1m", 100, 3),
                                                        ("s1m", 30, 0)])
def test_scheduler_warms_up_over_the_recipes_share_of_steps(name, steps, warmup, tmp_path):
    preset = get_preset(name)
    trainer = _trainer(preset, tmp_path, steps)
    trainer.create_optimizer_and_scheduler(num_training_steps=steps)
    peak = preset.learning_rate
    lr = [trainer.lr_scheduler.lr_lambdas[0](k) * peak for k in range(steps + 1)]
    assert warmup == warmup_steps(preset.warmup_ratio, steps, preset.warmup_rounding)
    assert lr[0] == (0.0 if warmup else peak)  # step 0: nothing yet (or straight to the peak with no warmup)
    assert lr[warmup] == pytest.approx(peak) and max(lr) == pytest.approx(peak)  # the peak, at 5% (3%) of the steps
    assert all(lr[k] < lr[k + 1] for k in range(warmup))  # rising linearly until then
    assert lr[warmup + 1] < peak and lr[steps] == pytest.approx(0.0, abs=1e-12)  # cosine to 0 (s1's min_lr 0)


def test_training_logs_the_warmup_steps_learning_rates(tmp_path):
    preset = get_preset("s1").replace(global_batch_size=1, per_device_batch_size=1, bf16=False, block_size=256)
    trainer = _trainer(preset, tmp_path, 40)
    trainer.args.logging_steps = 1
    trainer.train()
    logged = [h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h]
    # the rate each optimizer step used: ceil(5% of 40) = 2 warmup steps from 0, then the peak
    assert logged[:3] == pytest.approx([0.0, 0.5e-5, 1e-5], abs=1e-12)
    assert max(logged) == pytest.approx(1e-5) and logged[-1] < 1e-6


# ---------------------------------------------------------------------------------------------- text and mask


def s1_reference(row: dict, tokenizer) -> tuple[list[int], list[int]]:
    """s1's tokenization.py text, tokenised, and the labels trl's DataCollatorForCompletionOnlyLM gives it
    (response_template "<|im_start|>assistant\\n": everything up to and including it is -100)."""
    answer = row["attempt"]
    answer = "Answer: " + answer if "Answer:" not in answer else answer
    text = tokenizer.apply_chat_template([
        {"role": "user", "content": row["question"]},
        {"role": "assistant",
         "content": "<|im_start|>think\n" + "\n".join(row["thinking_trajectories"]).strip() + "\n<|im_start|>answer\n"
                    + answer.strip()},
    ], tokenize=False)
    ids = tokenizer(text)["input_ids"]
    template = tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False)
    start = next(i for i in range(len(ids)) if ids[i : i + len(template)] == template) + len(template)
    return ids, [-100] * start + ids[start:]


@pytest.mark.parametrize("attempt", ["The total is 7.", "So the Answer: 7 is right.  "])
def test_an_s1k_row_trains_on_what_s1_trains_on(attempt, tmp_path):
    tok = qwen_tokenizer()
    row = {**S1K_ROW, "attempt": attempt}
    ref_ids, ref_labels = s1_reference(row, tok)
    preset = get_preset("s1").replace(bf16=False)
    pc = to_prompt_completion(curated_record(row), tok, PRESETS["s1"], layout="chat")
    assert pc["prompt"].startswith("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.")
    assert pc["completion"].startswith("<|im_start|>think\nLet me think. 3 + 4 = 7.\nWait, check: 7.\n"
                                       "<|im_start|>answer\n")
    assert pc["completion"].endswith(("Answer: The total is 7." if "Answer:" not in attempt
                                      else "So the Answer: 7 is right.") + "<|im_end|>\n")
    trainer = _trainer(preset, tmp_path, 1)
    from datasets import Dataset
    from trl import SFTTrainer

    trainer = make_trainer(SFTTrainer, preset, model=trainer.model, args=trainer.args, processing_class=tok,
                           train_dataset=Dataset.from_list(tokenize_chat_rows([pc], tok)))
    batch = trainer.data_collator([trainer.train_dataset[0]])
    assert batch["input_ids"][0].tolist() == ref_ids
    assert batch["labels"][0].tolist() == ref_labels
    first = ref_labels.index(next(x for x in ref_labels if x != -100))
    assert tok.decode(ref_ids[first : first + 8]).startswith("<|im_start|>think\n")  # the opener is learnt
    assert tok.decode(ref_ids[-2:]) == "<|im_end|>\n"  # and the end of the turn, newline included


def test_s1k_rows_join_every_trajectory_and_label_the_answer_as_s1():
    assert curated_record(S1K_ROW) == {"question": "What is 3 + 4?",
                                       "thinking": "Let me think. 3 + 4 = 7.\nWait, check: 7.",
                                       "answer": "Answer: The total is 7."}
    assert curated_record({**S1K_ROW, "attempt": "Final Answer: 7"})["answer"] == "Final Answer: 7"
    assert curated_record({**S1K_ROW, "attempt": "It is 7 (Answer: 7)\n"})["answer"] == "It is 7 (Answer: 7)"
    assert curated_record({**S1K_ROW, "attempt": "answer: 7"})["answer"] == "Answer: answer: 7"  # case matters
    assert curated_record({**S1K_ROW, "thinking_trajectories": ["  one  "]})["thinking"] == "one"


def test_the_tiny_layout_is_untouched():
    tok = qwen_tokenizer()
    record = {"question": "q?", "thinking": "t", "answer": "Final Answer: 1"}
    pc = to_prompt_completion(record, tok, PRESETS["s1"])
    assert pc["prompt"].endswith("<|im_start|>assistant\n<|im_start|>think\n")
    assert pc["completion"] == "t\n<|im_start|>answer\nFinal Answer: 1<|im_end|>"


# ---------------------------------------------------------------------------------------------- s1m


def test_s1m_trains_a_tiny_qwen2_vl_saved_to_disk(tmp_path):
    from PIL import Image
    from test_train_vlm import build_processor, tiny_qwen2vl
    from transformers import Qwen2VLForConditionalGeneration

    from s1.backends.images import _image_only_class, load_processor
    from s1.train.run import SUMMARY_FILE, TrainJob, run_text, run_vision

    base = tmp_path / "qwen2vl"
    processor = build_processor(_image_only_class("Qwen2VLProcessor"))
    tiny_qwen2vl(processor).save_pretrained(base)
    processor.save_pretrained(base)
    loaded = load_processor(str(base))  # AutoProcessor, or the image-only stand-in without torchvision
    assert loaded.chat_template == processor.chat_template
    Image.new("RGB", (56, 56), (255, 0, 0)).save(tmp_path / "red.png")
    rows = [{"image": "red.png", "question": "What colour is the square?", "thinking": "Let me think. It is red.",
             "answer": "Final answer: red"}] * 2
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    small = {"per_device_batch_size": 2, "gradient_accumulation": 1, "block_size": 512, "bf16": False}
    job = TrainJob(model=str(base), data=str(tmp_path / "train.jsonl"), output=str(tmp_path / "out"), preset="s1m",
                   vision=True, max_steps=2, logging_steps=1, preset_overrides=small)
    summary = run_vision(job, log=lambda m: None)
    assert summary["steps"] == 2 and summary["freeze_vision"] == "none" and summary["format"] == "s1m"
    assert summary["preset"]["learning_rate"] == 2e-5 and summary["preset"]["weight_decay"] == 0.0
    assert all(torch.isfinite(torch.tensor(summary["losses"])))
    assert (tmp_path / "out" / SUMMARY_FILE).exists() and (tmp_path / "out" / "chat_template.jinja").exists()
    trained = Qwen2VLForConditionalGeneration.from_pretrained(tmp_path / "out").state_dict()
    original = Qwen2VLForConditionalGeneration.from_pretrained(base).state_dict()
    assert not all(torch.equal(trained[k], original[k]) for k in original if k.startswith("model.visual.blocks"))
    with pytest.raises(ValueError, match="add --vision"):
        run_text(TrainJob(model=str(base), data=str(tmp_path / "train.jsonl"), output=str(tmp_path / "x"),
                          preset="s1m"), log=lambda m: None)


def test_s1m_learns_the_think_opener_with_the_response():
    from test_train_vlm import build_processor

    from s1.train.vlm import VLMCollator, vlm_example

    processor = build_processor()
    record = {"images": [Image_red()], "question": "Colour?", "response": "<think>It is red.</think>Final answer: red"}
    example = vlm_example(record, processor, PRESETS["s1m"], layout="chat")
    assert example["prompt"].endswith("<|im_start|>assistant\n")
    assert example["completion"] == "<think>It is red.</think>Final answer: red<|im_end|>"
    labels = VLMCollator(processor)([example])["labels"][0].tolist()
    learnt = [x for x in labels if x != -100]
    assert learnt == processor.tokenizer(example["completion"], add_special_tokens=False)["input_ids"]


def Image_red():  # noqa: N802 - a tiny fixture image
    from PIL import Image

    return Image.new("RGB", (56, 56), (255, 0, 0))
