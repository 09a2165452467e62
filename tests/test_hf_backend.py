"""The transformers backend on tiny random models: exact budgets, single pass == multi-round,
batched == one-by-one, padded vocab, per-request policies."""

from __future__ import annotations

import pytest
import torch
from tiny import build_model, build_tokenizer

from s1.backends.hf.backend import HFBackend
from s1.forcing.policy import BudgetPolicy, SamplingSettings
from s1.forcing.request import Request

QUESTIONS = ["What is 2+3?", "Sort 3 1 2", "How many r are in raspberry?", "Count to ten", "Is 7 prime?"]


def reqs(n: int = 5):
    return [Request(f"q{i}", messages=q) for i, q in enumerate(QUESTIONS[:n])]


@pytest.mark.parametrize("mode", ["single", "multi"])
@pytest.mark.parametrize("budget", [0, 1, 9, 33])
def test_cap_gives_exactly_the_budget_then_the_cap_string(tiny_model, tiny_tok, mode, budget):
    backend = HFBackend(tiny_model, tiny_tok, format="s1", mode=mode)
    for g in backend.generate(reqs(3), BudgetPolicy(max_thinking_tokens=budget, max_answer_tokens=5)):
        assert g.error is None
        assert g.thinking_tokens == budget and g.cap_hit
        kinds = [s.kind for s in g.segments]
        assert kinds[0 if budget == 0 else 1] == "cap"
        cap = next(s for s in g.segments if s.kind == "cap")
        assert cap.text in ("\n<|im_start|>answer\nFinal Answer:", "<|im_start|>answer\nFinal Answer:")
        assert g.answer.startswith("Final Answer:") and g.thinking_closed
        assert g.answer_tokens == 5 and g.finish_reason == "length"


POLICIES = [
    BudgetPolicy(max_thinking_tokens=40, max_answer_tokens=6),
    BudgetPolicy(max_thinking_tokens=60, num_ignore=1, max_answer_tokens=6),
    BudgetPolicy(max_thinking_tokens=60, num_ignore=2, max_answer_tokens=6),
    BudgetPolicy(max_thinking_tokens=60, min_thinking_tokens=20, num_ignore=1, max_answer_tokens=6),
    BudgetPolicy(max_thinking_tokens=60, min_thinking_tokens=20, min_thinking_mode="wait", max_answer_tokens=6),
]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.label())
def test_single_pass_equals_multi_round_under_greedy(stopper_model, tiny_tok, policy):
    single = HFBackend(stopper_model, tiny_tok, format="s1", mode="single").generate(reqs(), policy)
    multi = HFBackend(stopper_model, tiny_tok, format="s1", mode="multi").generate(reqs(), policy)
    assert [g.token_ids for g in single] == [g.token_ids for g in multi]
    for a, b in zip(single, multi, strict=True):
        assert (a.thinking_tokens, a.thinking_forced_tokens, a.ignores_applied, a.cap_hit, a.finish_reason) == (
            b.thinking_tokens, b.thinking_forced_tokens, b.ignores_applied, b.cap_hit, b.finish_reason)
        assert a.thinking_tokens >= policy.min_thinking_tokens
    # the scripted EOS bias really makes the model try to stop, so ignores are exercised
    if policy.num_ignore:
        assert any(g.ignores_applied for g in single)


def test_batched_equals_one_by_one_under_greedy(stopper_model, tiny_tok):
    policy = BudgetPolicy(max_thinking_tokens=50, num_ignore=2, max_answer_tokens=8)
    backend = HFBackend(stopper_model, tiny_tok, format="s1")
    batched = backend.generate(reqs(), policy)
    alone = [backend.generate([r], policy)[0] for r in reqs()]
    assert [g.token_ids for g in batched] == [g.token_ids for g in alone]


def test_sampling_is_per_sequence_seeded_so_batching_does_not_change_samples(tiny_model, tiny_tok):
    policy = BudgetPolicy(max_thinking_tokens=20, max_answer_tokens=4,
                          thinking=SamplingSettings(temperature=1.0, top_p=0.9, top_k=50, seed=7))
    backend = HFBackend(tiny_model, tiny_tok, format="s1")
    samples = [Request("q", messages="What is 2+3?", sample_index=k) for k in range(4)]
    batched = backend.generate(samples, policy)
    alone = [backend.generate([r], policy)[0] for r in samples]
    assert [g.token_ids for g in batched] == [g.token_ids for g in alone]
    assert len({tuple(g.token_ids) for g in batched}) > 1  # samples differ from each other
    other = backend.generate(samples[:1], policy.replace(thinking=SamplingSettings(temperature=1.0, seed=8)))
    assert other[0].token_ids != batched[0].token_ids


def test_padded_vocab_rows_are_never_emitted(tiny_tok):
    model = build_model(tiny_tok)
    assert model.config.vocab_size > len(tiny_tok)
    with torch.no_grad():  # make every id past the tokenizer the model's favourite
        model.lm_head.weight[len(tiny_tok):] = model.lm_head.weight[:len(tiny_tok)].abs().max() * 50
    for mode in ("single", "multi"):
        gens = HFBackend(model, tiny_tok, format="s1", mode=mode).generate(
            reqs(2), BudgetPolicy(max_thinking_tokens=10, max_answer_tokens=5,
                                  thinking=SamplingSettings(temperature=1.0, seed=0)))
        assert all(0 <= t < len(tiny_tok) for g in gens for t in g.token_ids)


def test_requests_with_different_policies_share_a_batch(tiny_model, tiny_tok):
    backend = HFBackend(tiny_model, tiny_tok, format="s1")
    a = Request("a", messages=QUESTIONS[0], policy=BudgetPolicy(max_thinking_tokens=5, max_answer_tokens=3))
    b = Request("b", messages=QUESTIONS[0], policy=BudgetPolicy(max_thinking_tokens=25, max_answer_tokens=3))
    ga, gb = backend.generate([a, b])
    assert (ga.thinking_tokens, gb.thinking_tokens) == (5, 25)
    assert ga.token_ids == backend.generate([a])[0].token_ids


def test_a_request_that_cannot_fit_is_recorded_as_failed_not_dropped(tiny_model, tiny_tok):
    backend = HFBackend(tiny_model, tiny_tok, format="s1", context_length=64)
    long = Request("long", messages="count " * 80)
    ok = Request("ok", messages="hi", policy=BudgetPolicy(max_thinking_tokens=4, max_answer_tokens=4))
    gens = backend.generate([long, ok], BudgetPolicy(max_answer_tokens=4))
    assert [g.prompt_id for g in gens] == ["long", "ok"]
    assert gens[0].error and "context" in gens[0].error and gens[0].finish_reason == "error"
    assert gens[1].error is None and gens[1].thinking_tokens == 4


def test_llama_architecture_and_think_tokens_work_single_pass(tiny_tok):
    tok = build_tokenizer(think_tokens=True)
    model = build_model(tok, arch="llama")
    backend = HFBackend(model, tok, format="auto")
    assert backend.format.name == "think" and backend.single_pass
    g = backend.generate(reqs(1), BudgetPolicy(max_thinking_tokens=12, min_thinking_tokens=12, max_answer_tokens=3))[0]
    assert g.thinking_tokens == 12 and "</think>" in g.text and g.answer.startswith("Final Answer:")


def test_records_are_json_round_trippable(tiny_model, tiny_tok):
    from s1.records import Generation

    g = HFBackend(tiny_model, tiny_tok, format="s1").generate(reqs(1), BudgetPolicy(max_thinking_tokens=3,
                                                                                    max_answer_tokens=2))[0]
    back = Generation.from_dict(__import__("json").loads(g.to_json()))
    assert back == g and g.setting == "think<=3"


def test_bad_backend_options_are_refused(tiny_model, tiny_tok):
    with pytest.raises(ValueError, match="mode must be one of"):
        HFBackend(tiny_model, tiny_tok, format="s1", mode="fast")
    with pytest.raises(ValueError, match="batch_size"):
        HFBackend(tiny_model, tiny_tok, format="s1", batch_size=0)


def test_one_row_rounds_reuse_the_kv_cache_and_still_match_the_single_pass(stopper_model, tiny_tok):
    policy = BudgetPolicy(max_thinking_tokens=60, num_ignore=3, max_answer_tokens=6)
    single = HFBackend(stopper_model, tiny_tok, format="s1", mode="single").generate(reqs(), policy)
    rounds = HFBackend(stopper_model, tiny_tok, format="s1", mode="multi", batch_size=1)
    multi = rounds.generate(reqs(), policy)
    assert [g.token_ids for g in multi] == [g.token_ids for g in single]
    assert rounds.reused_cache_tokens > 0  # later rounds prefilled only what was appended


def test_an_engine_failure_in_one_batch_is_recorded_and_the_rest_still_run(tiny_model, tiny_tok, monkeypatch):
    backend = HFBackend(tiny_model, tiny_tok, format="s1", batch_size=2)
    real = backend._single_pass
    calls = []

    def flaky(seqs):
        calls.append(len(seqs))
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(seqs)

    monkeypatch.setattr(backend, "_single_pass", flaky)
    gens = backend.generate(reqs(4), BudgetPolicy(max_thinking_tokens=3, max_answer_tokens=2))
    assert [g.prompt_id for g in gens] == ["q0", "q1", "q2", "q3"]
    assert [g.finish_reason for g in gens] == ["error", "error", "length", "length"]
    assert "out of memory" in gens[0].error and gens[2].error is None
