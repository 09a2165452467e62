"""Protocol presets: s1's and S1-M's round loops as their code runs them, on a scripted engine (every quirk
under control) and on the real engines (the embedded tiny model)."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer, RepetitionPenaltyLogitsProcessor

from s1.backends import load_backend
from s1.backends.sampling import RowSampler
from s1.forcing.binding import BoundFormat, bind_format
from s1.forcing.drive import run_rounds
from s1.forcing.policy import AUTO, BudgetPolicy, PolicyError, SamplingSettings
from s1.forcing.protocols import S1_FORMAT, S1M_FORMAT, get_protocol, s1_auto_budget
from s1.forcing.request import Request
from s1.forcing.rounds import RoundResult, RoundStops
from s1.forcing.sequence import open_sequence, record
from s1.forcing.sweep import run_sweep
from s1.forcing.text import TokenizerText, run
from s1.models import TINY_MODEL_DIR
from s1.records import Kind

QUESTION = "What is 47 + 58?"


@pytest.fixture(scope="module")
def tok():
    return AutoTokenizer.from_pretrained(TINY_MODEL_DIR)


@pytest.fixture(scope="module")
def tiny():
    return load_backend(None, device="cpu")


def scripted(tok, fmt, policy, model, context=1024):
    """Run `policy`'s protocol loop on a scripted engine: `model(text_so_far, spec)` returns the text of a
    round, which is encoded and cut as an engine cuts it (quota; a stop id ends the round, included)."""
    tokens = BoundFormat(bind_format(fmt, tok), tok).forcing_tokens(policy)
    prompt = fmt.ensure_open("<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n")
    ids = tok.encode(prompt, add_special_tokens=False)
    seq = open_sequence(Request("q", prompt=prompt), policy, tokens, context, prompt, ids)
    calls = []

    def engine(batch):
        out = []
        for s, spec in batch:
            calls.append(spec)
            new = tok.encode(model(tok.decode(s.emitted), spec), add_special_tokens=False)[: spec.quota]
            cut = next((k + 1 for k, t in enumerate(new) if t in spec.stop_ids and k >= spec.min_tokens), len(new))
            out.append(RoundResult(new[:cut]))
        return out

    run_rounds([seq], RoundStops(), engine, TokenizerText(tok))
    return seq, run(record(seq, fmt, "scripted"), TokenizerText(tok)), calls


# -- s1 ----------------------------------------------------------------------------------------------------
def test_s1_gives_every_round_the_whole_budget_and_marks_the_end_by_the_last_round(tok):
    """Round 2 may run to the full budget again; the ids are cut to the budget afterwards, and since the
    last round ended naturally, the end marker is `<|im_start|>answer` alone (no `Final Answer:`)."""
    policy = get_protocol("s1").policy(12, num_ignore=1, max_answer_tokens=4)

    def model(so_far, spec):
        if spec.phase.value == "answer":
            return " 5<|im_end|>"
        return "a b c d e<|im_start|>" if "Wait" not in so_far else "f g h<|im_start|>"  # 10 + 6 tokens > 12

    seq, gen, calls = scripted(tok, S1_FORMAT, policy, model)
    think = [c for c in calls if c.phase.value == "think"]
    assert [c.quota for c in think] == [12, 12]  # the full budget in every round, not what is left
    assert all(c.min_tokens == 1 for c in think)  # min_tokens=1 in every round once ignores are asked for
    assert gen.thinking_tokens + gen.thinking_forced_tokens == 12  # cut to the budget, the Wait counted
    assert gen.text.count("<|im_start|>answer") == 1 and "Final Answer:" not in gen.text
    assert not gen.cap_hit and gen.meta["s1_generated_past_budget"] > 0


def test_s1_forces_final_answer_when_the_last_round_ran_out(tok):
    policy = get_protocol("s1").policy(6, num_ignore=0, max_answer_tokens=4)

    def model(so_far, spec):
        return "a b c d e f g h" if spec.phase.value == "think" else " 5<|im_end|>"

    _, gen, _ = scripted(tok, S1_FORMAT, policy, model)
    assert gen.cap_hit and "\n<|im_start|>answer\nFinal Answer:" in gen.text and gen.thinking_tokens == 6


def test_s1_never_puts_two_ignore_strings_together(tok):
    """A model that wants to stop right after every `Wait`: the one-token minimum (s1's min_tokens=1)
    makes it say something first, so no record holds `WaitWait`."""
    policy = get_protocol("s1").policy(40, num_ignore=3, max_answer_tokens=4)

    def model(so_far, spec):
        if spec.phase.value == "answer":
            return " 5<|im_end|>"
        return ("x<|im_start|>" if spec.min_tokens else "<|im_start|>") if so_far.endswith("Wait") else "a<|im_start|>"

    _, gen, _ = scripted(tok, S1_FORMAT, policy, model)
    kinds = [s.kind for s in gen.segments]
    assert gen.ignores_applied == 3 and "WaitWait" not in gen.text
    assert all(b is Kind.THINK for a, b in zip(kinds, kinds[1:], strict=False) if a is Kind.IGNORE)


def test_s1_auto_is_the_reference_formula_over_the_longest_prompt(tiny, tok):
    requests = [Request(str(i), messages=q) for i, q in enumerate(["1+1?", QUESTION, "Add 123 and 4567, please."])]
    policy = tiny.resolve_protocol(requests, get_protocol("s1").policy(AUTO))
    chats = [tok.apply_chat_template([{"role": "user", "content": r.messages}], tokenize=False,
                                     add_generation_prompt=True) for r in requests]
    longest = max(len(tok.encode(c.rstrip("\n").removesuffix("<|im_start|>think").rstrip("\n") + "\n",
                                 add_special_tokens=False)) for c in chats)
    start = len(tok.encode("<|im_start|>think", add_special_tokens=False))
    end = len(tok.encode("<|im_start|>answer\nFinal Answer:", add_special_tokens=False))
    assert policy.max_thinking_tokens == 1024 - longest - start - end - 100 == s1_auto_budget(longest, start, end, 1024)


def test_s1_on_the_tiny_model_keeps_a_sampled_token_after_each_wait(tiny):
    gens = tiny.generate([Request(str(i), messages=f"What is {a} + {b}?") for i, (a, b) in
                          enumerate([(47, 58), (12, 13), (305, 96)])], get_protocol("s1").policy(400, num_ignore=2))
    assert all(g.error is None for g in gens) and sum(g.ignores_applied for g in gens) >= 2
    for g in gens:
        kinds = [s.kind for s in g.segments]
        assert all(b is Kind.THINK for a, b in zip(kinds, kinds[1:], strict=False) if a is Kind.IGNORE)


# -- S1-M --------------------------------------------------------------------------------------------------
def test_s1m_always_forces_its_final_answer_even_without_ignores(tok):
    """S1-M cuts the reply at its first `</think>`, drops the model's own answer, forces
    `</think>\\nFinal answer: ` and asks again with what is left of the budget."""
    policy = get_protocol("s1m").policy(200, num_ignore=0)

    def model(so_far, spec):
        return "<think>\nsum is 5\n</think>\nThe answer is 4.<|im_end|>" if not so_far else "5<|im_end|>"

    _, gen, calls = scripted(tok, S1M_FORMAT, policy, model)
    assert gen.text == "<think>\nsum is 5\n</think>\nFinal answer: 5" and gen.answer == "Final answer: 5"
    first = len(tok.encode("<think>\nsum is 5\n</think>\nThe answer is 4.", add_special_tokens=False))
    assert calls[-1].quota == 200 - first  # the answer's cap is the budget left after re-tokenizing the reply
    assert gen.meta["s1m_counted_tokens"] == first and gen.meta["s1m_discarded_tokens"] > 0


def test_s1m_cycles_its_seven_strings_and_returns_a_reply_without_think_unforced(tok):
    policy = get_protocol("s1m").policy(300, num_ignore=2)

    def model(so_far, spec):
        return "<think>\nx\n</think>\nA.<|im_end|>" if not so_far else " y\n</think>\nB.<|im_end|>"

    _, gen, _ = scripted(tok, S1M_FORMAT, policy, model)
    assert "Wait, y\nMaybe I made a mistake. y\n</think>\nFinal answer: " in gen.text and gen.ignores_applied == 2
    _, plain, _ = scripted(tok, S1M_FORMAT, policy, lambda so_far, spec: "The answer is 5.<|im_end|>")
    assert plain.text == "The answer is 5." and plain.meta["s1m_unforced"] and plain.thinking_forced_tokens == 0


# -- what the presets change in the default runtime --------------------------------------------------------
def test_an_empty_ignore_string_drops_the_end_and_needs_a_minimum(tiny):
    with pytest.raises(PolicyError, match="ignore_strings: an empty string needs min_tokens_after_ignore"):
        BudgetPolicy(num_ignore=1, ignore_strings=("",))
    policy = BudgetPolicy(max_thinking_tokens=200, num_ignore=2, ignore_strings=("",), min_tokens_after_ignore=1,
                          max_answer_tokens=16)
    single = tiny.generate([Request("q", messages=QUESTION)], policy)[0]
    multi = load_backend(None, device="cpu", mode="multi").generate([Request("q", messages=QUESTION)], policy)[0]
    assert single.error is None and single.ignores_applied == 2 and single.thinking_forced_tokens == 0
    assert single.token_ids == multi.token_ids  # one pass and rounds agree on the ablation too
    swept = run_sweep(tiny, [Request("q", messages=QUESTION)], [policy, policy.replace(num_ignore=0)])
    assert swept.generations[0].token_ids == single.token_ids  # no prefix to branch at: run on its own


def test_the_rest_of_the_context_as_answer_cap(tiny):
    with pytest.raises(PolicyError, match="'rest' needs an integer max_thinking_tokens"):
        BudgetPolicy(max_answer_tokens="rest")
    g = tiny.generate([Request("q", messages=QUESTION)], BudgetPolicy(max_thinking_tokens=10,
                                                                        max_answer_tokens="rest"))[0]
    assert g.error is None and g.prompt_tokens + g.thinking_budget + g.answer_tokens <= 1024


def test_repetition_penalty_is_transformers_formula_and_changes_greedy_output_the_same_way(tiny):
    import torch

    logits = torch.randn(1, 50)
    history = [3, 7, 7, 20]
    expected = RepetitionPenaltyLogitsProcessor(1.3)(torch.tensor([history]), logits.clone())[0]
    row = logits[0].clone()
    RowSampler(SamplingSettings(repetition_penalty=1.3)).penalize(row, history, 2)
    assert torch.equal(row, expected)
    base = BudgetPolicy(max_thinking_tokens=60, max_answer_tokens=12)
    penalized = base.replace(thinking=SamplingSettings(repetition_penalty=1.3))
    plain = tiny.generate([Request("q", messages=QUESTION)], base)[0]
    single = tiny.generate([Request("q", messages=QUESTION)], penalized)[0]
    multi = load_backend(None, device="cpu", mode="multi").generate([Request("q", messages=QUESTION)], penalized)[0]
    assert single.token_ids != plain.token_ids  # the penalty acts
    assert single.token_ids == multi.token_ids  # one formula in every engine path


def test_the_protocol_preset_fills_what_is_left_open_and_the_manifest_names_what_was_changed(tmp_path):
    import json

    from typer.testing import CliRunner

    from s1.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["eval", "--protocol", "s1", "--limit", "2", "--budgets", "24",
                                      "--temperature", "0.0", "--top-p", "0.5", "--output", str(out), "--no-plot",
                                      "--device", "cpu", "--allow-failures"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    params = manifest["parameters"]
    assert params["protocol"] == "s1" and params["protocol_overrides"] == ["budgets", "top_p"]  # temperature 0: s1
    assert params["max_answer_tokens"] == "rest" and params["min_tokens_after_ignore"] == 1
    assert manifest["reasoning_format"] == "s1-lm-eval"
