"""Reasoning formats: presets, prompt building with real chat templates, splitting, auto-detection."""

from __future__ import annotations

import pytest
from tiny import build_tokenizer

from s1.forcing.formats import PRESETS, S1M_IGNORE_STRINGS, custom_format, detect_format, get_format


def test_presets_carry_the_papers_strings():
    s1 = PRESETS["s1"]
    assert (s1.think_open, s1.close_marker, s1.cap) == (
        "<|im_start|>think\n", "<|im_start|>answer", "\n<|im_start|>answer\nFinal Answer:")
    assert set(s1.think_stops) == {"<|im_start|>", "<|im_end|>"}
    think = PRESETS["think"]
    assert (think.think_open, think.think_close, think.cap) == ("<think>\n", "</think>", "\n</think>\n\nFinal Answer:")
    s1m = PRESETS["s1m"]
    assert s1m.cap == "</think>\nFinal answer: " and s1m.ignore_strings == S1M_IGNORE_STRINGS
    assert S1M_IGNORE_STRINGS[0] == "Wait," and S1M_IGNORE_STRINGS[-1] == "I need to think more and check again."
    assert len(S1M_IGNORE_STRINGS) == 7


def test_cap_newline_only_when_missing():
    s1 = PRESETS["s1"]
    assert s1.cap_text("so 42") == "\n<|im_start|>answer\nFinal Answer:"
    assert s1.cap_text("so 42\n") == "<|im_start|>answer\nFinal Answer:"
    assert PRESETS["s1m"].cap_text("x\n") == "</think>\nFinal answer: "


def test_prompt_uses_the_chat_template_and_ends_with_the_opener_once():
    tok = build_tokenizer()
    prompt = PRESETS["s1"].render_prompt(tok, "What is 2+2?", system="Be brief.")
    assert prompt == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
                      "<|im_start|>assistant\n<|im_start|>think\n")
    # a template that already opens thinking (R1 / Qwen3 style) is not given a second opener
    tok.chat_template = tok.chat_template.replace("assistant\\n'", "assistant\\n<think>\\n'")
    prompt = PRESETS["think"].render_prompt(tok, [{"role": "user", "content": "hi"}])
    assert prompt.endswith("<|im_start|>assistant\n<think>\n") and prompt.count("<think>") == 1


def test_prompt_without_a_chat_template_is_refused_clearly():
    tok = build_tokenizer()
    tok.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        PRESETS["s1"].render_prompt(tok, "hi")
    assert PRESETS["think"].ensure_open("Q: hi\nA:") == "Q: hi\nA:<think>\n"


def test_split_separates_thinking_and_answer():
    assert PRESETS["s1"].split("a\nb\n<|im_start|>answer\nFinal Answer: 7") == ("a\nb", "Final Answer: 7", True)
    assert PRESETS["think"].split("hmm</think>\n\n**42**") == ("hmm", "**42**", True)
    assert PRESETS["think"].split("never closed") == ("never closed", "", False)


def test_auto_detects_s1_and_think_and_refuses_plain_chat_models():
    tok = build_tokenizer()
    with pytest.raises(ValueError, match="s1, think, s1m"):
        detect_format(tok)  # plain ChatML: ambiguous
    tok.chat_template += "{{ '<|im_start|>think' }}"
    assert detect_format(tok).name == "s1"
    assert detect_format(build_tokenizer(think_tokens=True)).name == "think"
    with pytest.raises(ValueError, match="needs a tokenizer"):
        get_format("auto")


def test_unknown_format_lists_the_choices_and_custom_formats_validate():
    with pytest.raises(ValueError, match="allowed: s1, think, s1m, auto"):
        get_format("r2")
    fmt = custom_format("<reason>", "</reason>", ignore_strings=["Hmm", "Also"])
    assert fmt.cap == "\n</reason>\nFinal Answer:" and fmt.ignore_strings == ("Hmm", "Also")
    with pytest.raises(ValueError, match="think_close"):
        custom_format("<reason>", "")
    with pytest.raises(ValueError, match="ignore_strings"):
        custom_format("<a>", "</a>", ignore_strings=[""])
