"""Budget sweeps that think once: every setting's record equals an independent run under greedy
decoding, failures stay recorded, and settings that would change the shared thinking are refused."""

from __future__ import annotations

import pytest

from s1.backends.hf.backend import HFBackend
from s1.forcing.policy import BudgetPolicy, PolicyError, SamplingSettings
from s1.forcing.request import Request
from s1.forcing.sweep import longest_setting, run_sweep

QUESTIONS = ["What is 2+3?", "Sort 3 1 2", "How many r are in raspberry?", "Count to ten", "Is 7 prime?",
             "Name a prime", "Add 17 and 25"]
FIELDS = ("thinking", "answer", "token_ids", "thinking_tokens", "thinking_forced_tokens", "answer_tokens",
          "answer_forced_tokens", "ignores_applied", "cap_hit", "thinking_closed", "finish_reason", "setting",
          "thinking_budget")


def requests() -> list[Request]:
    return [Request(f"q{i}", messages=q) for i, q in enumerate(QUESTIONS)]


def assert_same_as_independent(backend: HFBackend, settings: list[BudgetPolicy], reqs: list[Request]) -> None:
    result = run_sweep(backend, reqs, settings)
    assert len(result.generations) == len(reqs) * len(settings)
    for j, policy in enumerate(settings):
        alone = backend.generate(reqs, policy)
        swept = result.generations[j :: len(settings)]
        for a, b in zip(swept, alone, strict=True):
            assert a.prompt_id == b.prompt_id and a.error is None
            for name in FIELDS:
                assert getattr(a, name) == getattr(b, name), (policy.label(), a.prompt_id, name)


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_budget_sweep_equals_independent_runs(stopper_model, tiny_tok, mode):
    backend = HFBackend(stopper_model, tiny_tok, format="s1", mode=mode)
    settings = [BudgetPolicy(max_thinking_tokens=b, max_answer_tokens=6) for b in (0, 3, 10, 25, 60)]
    assert_same_as_independent(backend, settings, requests())


def test_branches_continue_from_the_longest_runs_kv_cache(stopper_model, tiny_tok):
    # batches of 3 over 7 requests, branch batches of 4, answers long enough for several decode rounds
    backend = HFBackend(stopper_model, tiny_tok, format="s1", batch_size=3, answer_batch_size=4)
    settings = [BudgetPolicy(max_thinking_tokens=b, max_answer_tokens=20) for b in (2, 7, 15, 60)]
    result = run_sweep(backend, requests(), settings)
    assert result.branches >= len(QUESTIONS)
    # every branch skipped at least its prompt and the thinking it shares with the longest run
    assert backend.reused_cache_tokens >= sum(g.prompt_tokens + 2 for g in result.generations[::len(settings)])
    assert any(g.answer_tokens > 8 for g in result.generations)  # some answers ran past the first rounds
    assert backend._retained is None  # nothing kept once the sweep is done
    assert_same_as_independent(backend, settings, requests())


def test_ignore_and_budget_grid_equals_independent_runs(stopper_model, tiny_tok):
    backend = HFBackend(stopper_model, tiny_tok, format="s1")
    settings = [BudgetPolicy(max_thinking_tokens=b, num_ignore=k, max_answer_tokens=5)
                for b in (8, 40, 90) for k in (0, 1, 2, 4)]
    result = run_sweep(backend, requests(), settings)
    # the model really tries to stop, so some settings branch at a kept natural end
    assert any(g.ignores_applied for g in result.generations)
    assert any(g.thinking_closed and not g.cap_hit for g in result.generations)
    assert result.branches > 0
    assert_same_as_independent(backend, settings, requests())


def test_sampled_sweep_equals_independent_runs_with_a_seed(stopper_model, tiny_tok):
    backend = HFBackend(stopper_model, tiny_tok, format="s1")
    sampling = SamplingSettings(temperature=1.0, seed=3)
    settings = [BudgetPolicy(max_thinking_tokens=b, num_ignore=k, max_answer_tokens=5, thinking=sampling)
                for b in (5, 30) for k in (0, 2)]
    reqs = [Request(f"q{i}", messages=q, sample_index=s) for i, q in enumerate(QUESTIONS[:3]) for s in (0, 1)]
    assert_same_as_independent(backend, settings, reqs)


def test_settings_may_differ_only_in_budget_and_ignores():
    a = BudgetPolicy(max_thinking_tokens=10)
    assert longest_setting([a, BudgetPolicy(max_thinking_tokens="auto", num_ignore=2)]).max_thinking_tokens == "auto"
    assert longest_setting([a, BudgetPolicy(max_thinking_tokens=20, num_ignore=2)]) == BudgetPolicy(
        max_thinking_tokens=20, num_ignore=2)
    with pytest.raises(PolicyError, match="max_answer_tokens differs"):
        longest_setting([a, BudgetPolicy(max_thinking_tokens=20, max_answer_tokens=5)])
    with pytest.raises(PolicyError, match="at least one setting"):
        longest_setting([])


def test_a_rejected_request_is_recorded_in_every_setting(stopper_model, tiny_tok):
    backend = HFBackend(stopper_model, tiny_tok, format="s1", context_length=64)
    reqs = [Request("short", messages="Hi"), Request("long", messages="word " * 80)]
    settings = [BudgetPolicy(max_thinking_tokens=b, max_answer_tokens=4) for b in (2, 8)]
    gens = run_sweep(backend, reqs, settings).generations
    assert [(g.prompt_id, g.setting, g.error is None) for g in gens] == [
        ("short", "think<=2", True), ("short", "think<=8", True), ("long", "think<=2", False),
        ("long", "think<=8", False)]
    assert "context length" in gens[2].error
