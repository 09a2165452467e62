"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from s1.metrics import (
    SweepPoint,
    accuracy,
    accuracy_ci,
    control,
    cov_at_k,
    maj_at_k,
    majority_vote,
    mean_pass_at_k,
    no_answer,
    pass_at_k,
    performance,
    scaling,
    sweep_metrics,
    thinking_stats,
    total_thinking_tokens,
)
from s1.records import Generation

# -- accuracy and bootstrap CI ------------------------------------------------------------------------


def test_accuracy_is_the_mean():
    assert accuracy([True, False, True, True]) == 0.75
    assert accuracy([0.5, 1.0]) == 0.75


@pytest.mark.parametrize("bad", [[], ()])
def test_empty_input_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="non-empty"):
        accuracy_ci(bad)
    with pytest.raises(ValueError, match="non-empty"):
        accuracy(bad)


def test_ci_is_deterministic_given_seed_and_contains_the_mean():
    data = [True] * 13 + [False] * 17
    a = accuracy_ci(data, seed=3)
    assert a == accuracy_ci(data, seed=3)
    other = accuracy_ci(data, seed=4)  # another seed: the same mean, bounds within a resampling step or two
    assert other[0] == a[0] and other[1:] == pytest.approx(a[1:], abs=2.5 / 30)
    mean, low, high = a
    assert mean == pytest.approx(13 / 30)
    assert low < mean < high
    assert low >= 0.0 and high <= 1.0


def test_ci_narrows_with_n():
    small = accuracy_ci([True, False] * 10)
    large = accuracy_ci([True, False] * 500)
    assert small[0] == large[0] == 0.5
    assert (large[2] - large[1]) < (small[2] - small[1]) / 3  # width ~ 1/sqrt(n): sqrt(50) ~ 7


def test_ci_matches_the_normal_approximation():
    # n = 400, p = 0.5: standard error 0.025, so a 95% interval of about +-0.049.
    mean, low, high = accuracy_ci([True, False] * 200, n_boot=4000)
    assert low == pytest.approx(0.5 - 1.96 * 0.025, abs=0.01)
    assert high == pytest.approx(0.5 + 1.96 * 0.025, abs=0.01)


def test_ci_of_a_constant_is_a_point():
    assert accuracy_ci([True] * 7) == (1.0, 1.0, 1.0)
    assert accuracy_ci([False]) == (0.0, 0.0, 0.0)


def test_ci_validates_its_parameters():
    with pytest.raises(ValueError, match="n_boot"):
        accuracy_ci([True], n_boot=0)
    with pytest.raises(ValueError, match="confidence"):
        accuracy_ci([True], confidence=1.0)


# -- pass@k ---------------------------------------------------------------------------------------------


def test_pass_at_k_by_hand():
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(5, 2))  # 1 - 3/10
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)  # pass@1 = c / n
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 4, 2) == 1.0  # n - c < k: every 2 samples contain a correct one
    assert pass_at_k(5, 5, 5) == 1.0


def test_pass_at_k_equals_the_binomial_formula():
    for n in range(1, 12):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)


def test_pass_at_k_is_stable_for_large_n():
    # C(1000, 500) overflows a float; the product form does not need it.
    assert pass_at_k(1000, 1, 500) == pytest.approx(0.5)
    assert 0.0 < pass_at_k(2000, 3, 10) < 1.0


@pytest.mark.parametrize(("n", "c", "k", "field"), [(5, 6, 1, "c"), (5, 2, 6, "k"), (5, 2, 0, "k"),
                                                     (0, 0, 1, "n"), (5, -1, 1, "c"), (5, 2.0, 1, "c")])
def test_pass_at_k_validates(n, c, k, field):
    with pytest.raises(ValueError, match=field):
        pass_at_k(n, c, k)


def test_mean_pass_at_k():
    assert mean_pass_at_k([(5, 2), (5, 0), (5, 5)], 2) == pytest.approx((0.7 + 0 + 1) / 3)
    with pytest.raises(ValueError):
        mean_pass_at_k([], 1)


# -- maj@k and cov@k ------------------------------------------------------------------------------------

ANSWERS = ["a", "b", "b", "a", "c"]
CORRECT = [False, True, True, False, False]


def test_maj_at_k_votes_over_the_first_k():
    assert maj_at_k(ANSWERS, CORRECT, 1) is False  # a
    assert maj_at_k(ANSWERS, CORRECT, 2) is False  # a:1, b:1 -> tie, a appeared first
    assert maj_at_k(ANSWERS, CORRECT, 3) is True  # b:2
    assert maj_at_k(ANSWERS, CORRECT, 4) is False  # a:2, b:2 -> tie, a appeared first
    assert maj_at_k(ANSWERS, CORRECT, 5) is False


def test_majority_vote_returns_the_first_appearance_of_the_winner():
    assert majority_vote(ANSWERS, 3) == 1
    assert majority_vote(ANSWERS) == 0
    assert majority_vote(["x", "y", "y", "x", "y"]) == 1


def test_none_never_wins_unless_all_are_none():
    answers = [None, None, None, "x"]
    correct = [False, False, False, True]
    assert majority_vote(answers, 3) is None
    assert maj_at_k(answers, correct, 3) is False  # all None -> wrong
    assert maj_at_k(answers, correct, 4) is True  # x has one vote, None three: x wins
    # None samples are skipped, not counted as a (wrong) answer class.
    assert maj_at_k([None, "y", None, "z", "z"], [False, False, False, True, True], 5) is True


def test_maj_at_k_votes_over_canonical_keys():
    answers = ["1", "0.5", "1/2", "1"]
    correct = [False, True, True, False]
    canonical = ["one", "half", "half", "one"]
    assert maj_at_k(answers, correct, 3) is False  # raw strings: three singletons, "1" first
    assert maj_at_k(answers, correct, 3, canonical=canonical) is True  # half: 2 votes
    assert maj_at_k(answers, correct, 4, canonical=canonical) is False  # one: 2, half: 2, one first


def test_maj_at_k_validates():
    with pytest.raises(ValueError, match="same length"):
        maj_at_k(["a"], [True, False], 1)
    with pytest.raises(ValueError, match="same length"):
        maj_at_k(["a", "b"], [True, False], 1, canonical=["a"])
    with pytest.raises(ValueError, match="k"):
        maj_at_k(["a"], [True], 2)
    with pytest.raises(ValueError, match="k"):
        maj_at_k(["a"], [True], 0)


def test_cov_at_k():
    assert cov_at_k([False, False, True], 2) is False
    assert cov_at_k([False, False, True], 3) is True
    with pytest.raises(ValueError):
        cov_at_k([True], 2)


# -- thinking-token statistics --------------------------------------------------------------------------


def _gens() -> list[Generation]:
    return [
        Generation("q1", thinking="a\nb\nc", answer="42", thinking_tokens=100, answer_tokens=10,
                   answer_forced_tokens=3, thinking_closed=True),
        Generation("q2", thinking="x\ny", answer="Final Answer: 7", thinking_tokens=200, thinking_forced_tokens=2,
                   answer_tokens=5, answer_forced_tokens=4, ignores_applied=1, cap_hit=True, thinking_closed=True),
        Generation("q3", thinking="z", answer="", thinking_tokens=50, thinking_closed=False, finish_reason="length"),
        Generation.failed("q4", "boom"),
    ]


def test_thinking_stats_by_hand():
    s = thinking_stats(_gens(), budget=150, correct=[True, False, False, True],
                       answerless=[False, False, True, False])
    assert s.samples == 4 and s.errors == 1
    assert s.avg_steps == pytest.approx((3 + 2 + 1) / 3)
    # s1's total thinking = sampled + forced ignore tokens: 100, 202, 50
    assert s.avg_total_thinking_tokens == pytest.approx(352 / 3)
    assert (s.min_total_thinking_tokens, s.max_total_thinking_tokens) == (50, 202)
    assert s.avg_thinking_tokens == pytest.approx(350 / 3)  # sampled: what the budget counts
    assert s.max_thinking_tokens == 200
    assert s.avg_forced_thinking_tokens == pytest.approx(2 / 3)
    assert s.avg_answer_tokens == pytest.approx(5.0)
    assert s.avg_total_tokens == pytest.approx((113 + 211 + 50) / 3)
    assert s.too_many_thinking_tokens == 1  # 200 sampled > 150
    assert s.cap_hit == 1 and s.truncated == 1
    assert s.without_answer == 1 and s.thinking_unclosed == 1 and s.without_thinking == 0
    assert s.ignores_applied == 1
    assert s.sorted_thinking_tokens == (50, 100, 202)
    assert s.sorted_correct == (False, True, False)  # q3, q1, q2; the failed q4 is left out
    assert "samples w/o answer: 1" in s.lines()
    assert s.to_dict()["errors"] == 1


def test_thinking_stats_without_budget_or_grades_and_all_failed():
    s = thinking_stats(_gens())
    assert s.too_many_thinking_tokens is None and s.sorted_correct is None
    assert not any("too many thinking" in line for line in s.lines())
    none = thinking_stats([Generation.failed("q", "x")])
    assert none.errors == 1 and none.avg_thinking_tokens is None and none.sorted_thinking_tokens == ()
    assert "avg total thinking tokens: n/a" in none.lines()
    assert none.without_answer is None and "samples w/o answer: n/a" in none.lines()  # needs the grades
    with pytest.raises(ValueError, match="one entry per generation"):
        thinking_stats(_gens(), correct=[True])


def test_the_forced_final_answer_alone_is_no_answer_in_every_report():
    """A capped sample whose model said nothing after the forced `Final Answer:`: the grader extracts
    nothing (not the delimiter), and report and stats count it once, as no answer."""
    from s1.eval.report import summarize
    from s1.grading import grade
    from s1.records import SampleRecord

    capped = Generation("q", setting="think<=8", max_thinking_tokens=8, thinking="t", answer="Final Answer:",
                        thinking_tokens=8, cap_hit=True, thinking_closed=True, answer_tokens=0,
                        answer_forced_tokens=5)
    answered = Generation("r", setting="think<=8", max_thinking_tokens=8, thinking="t", answer="Final Answer: 143",
                          thinking_tokens=8, cap_hit=True, thinking_closed=True, answer_tokens=3)
    records = []
    for g in (capped, answered):
        v = grade("synthetic", g.answer, "143", {"family": "addition"})
        records.append(SampleRecord("t", g, v.correct, v.extracted, v.reason, "143"))
    assert records[0].extracted is None and records[1].extracted == "143"
    flags = [no_answer(r) for r in records]
    assert flags == [True, False]
    (row,) = summarize(records)
    stats = thinking_stats([r.generation for r in records], answerless=flags)
    assert row.no_answer == stats.without_answer / 2 == 0.5
    assert row.thinking_tokens == stats.avg_thinking_tokens == 8 and total_thinking_tokens(capped) == 8


# -- Control / Scaling / Performance (s1 paper, Eq. 1-3) ------------------------------------------------

# Three runs of a sweep: thinking tokens 1024, 2048, 4096; accuracy 20, 40, 50 (%); the last overshot
# its requested budget of 4000.
SWEEP = [
    SweepPoint(1024, 20.0, budget=1024, label="b1024"),
    SweepPoint(2048, 40.0, budget=2048, label="b2048"),
    SweepPoint(4096, 50.0, budget=4000, label="b4000"),
]


def test_control_by_hand():
    assert control(SWEEP) == pytest.approx(2 / 3)  # 4096 > 4000
    assert control(SWEEP, a_max=5000) == 1.0  # a global a_max overrides each run's budget
    assert control(SWEEP, a_min=1500) == pytest.approx(1 / 3)  # 1024 < 1500; 4096 > 4000
    assert control([SweepPoint(300, 0.1)]) == 1.0  # no bound asked, none broken
    assert control([SweepPoint(300, 0.1, min_budget=500)]) == 0.0
    with pytest.raises(ValueError):
        control([])


def test_scaling_by_hand():
    # slopes per token: 20/1024, 30/3072, 10/2048
    expected = (20 / 1024 + 30 / 3072 + 10 / 2048) / 3
    assert scaling(SWEEP) == pytest.approx(expected)
    # per doubling of thinking tokens: 20/1, 30/2, 10/1 -> mean 15
    assert scaling(SWEEP, log2_tokens=True) == pytest.approx(15.0)


def test_scaling_is_order_independent_and_negative_for_inverse_scaling():
    assert scaling(list(reversed(SWEEP))) == pytest.approx(scaling(SWEEP))
    inverse = [SweepPoint(1000, 0.5), SweepPoint(2000, 0.3)]
    assert scaling(inverse) == pytest.approx(-0.2 / 1000)


def test_scaling_degenerate_cases():
    assert scaling([]) is None
    assert scaling(SWEEP[:1]) is None
    assert scaling([SweepPoint(100, 0.1), SweepPoint(100, 0.3)]) is None  # equal x: no slope
    # the equal-x pair is skipped; the other two pairs are averaged
    pts = [SweepPoint(100, 0.1), SweepPoint(100, 0.3), SweepPoint(200, 0.5)]
    assert scaling(pts) == pytest.approx((0.4 / 100 + 0.2 / 100) / 2)
    with pytest.raises(ValueError, match="> 0"):
        scaling([SweepPoint(0, 0.1), SweepPoint(10, 0.2)], log2_tokens=True)


def test_performance_and_sweep_metrics():
    assert performance(SWEEP) == 50.0
    m = sweep_metrics(SWEEP, log2_tokens=True)
    assert (m.control, m.scaling, m.performance, m.runs) == (pytest.approx(2 / 3), pytest.approx(15.0), 50.0, 3)
    assert sweep_metrics(SWEEP[:1]).scaling is None
    with pytest.raises(ValueError):
        performance([])


def test_sweep_point_from_generations():
    gens = _gens()
    p = SweepPoint.from_generations([gens[0], gens[1], gens[3]], [True, True, True], budget=256, label="x")
    assert p.thinking_tokens == pytest.approx((100 + 200) / 2)  # sampled (what the budget counts); no failed sample
    assert p.accuracy == pytest.approx(2 / 3)  # ...but counts as wrong
    assert (p.budget, p.label) == (256, "x")
    with pytest.raises(ValueError):
        SweepPoint.from_generations(gens, [True])


def test_sweep_point_validates():
    with pytest.raises(ValueError, match="accuracy"):
        SweepPoint(10, float("nan"))
    with pytest.raises(ValueError, match="thinking_tokens"):
        SweepPoint(-1, 0.5)
