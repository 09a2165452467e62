"""Majority voting counts equivalent answers together; maj@k, best-of-N and pass@k curves from one
N-sample run match hand-computed values."""

from __future__ import annotations

import pytest

from s1.eval.summary import PASS_AT_K, equal_compute, method_curves, method_points
from s1.methods.best_of_n import best_of_n, weighted_best_of_n
from s1.methods.verifiers import aggregate
from s1.methods.voting import canonical_answers, vote_sizes, weighted_vote
from s1.metrics import majority_vote, pass_at_k
from s1.records import Generation, SampleRecord

SYNTH = {"family": "addition"}


def test_equivalent_answers_vote_together():
    answers = ["Final Answer: 143", "Final Answer: 0143", "Final Answer: 142", "Final Answer: 142",
               "Final Answer: 143.", "no idea"]
    extracted = ["143", "0143", "142", "142", "143.", None]
    canon = canonical_answers("synthetic", answers, extracted, SYNTH)
    assert canon == ["143", "143", "142", "142", "143", None]
    assert majority_vote(extracted) == 2  # raw strings: 142 has two votes, the three 143s are split
    assert weighted_vote(canon) == 0  # canonical: 143 wins three votes to two
    # classes already stored for this question (a resumed run) are tried first
    assert canonical_answers("synthetic", ["Final Answer: 0142"], ["0142"], SYNTH, known=["142"]) == ["142"]


def test_math_answers_are_grouped_by_math_equivalence():
    answers = [r"\boxed{\frac{1}{2}}", r"\boxed{0.5}", r"\boxed{1/2}", r"\boxed{2}"]
    extracted = [r"\frac{1}{2}", "0.5", "1/2", "2"]
    assert canonical_answers("math", answers, extracted) == [r"\frac{1}{2}"] * 3 + ["2"]


def test_weighted_vote_and_best_of_n_by_hand():
    keys = ["a", "b", "b", "c", None]
    assert weighted_vote(keys) == 1  # b: 2 votes
    assert weighted_vote(keys, k=1) == 0
    assert weighted_vote(["a", "b"]) == 0  # tie: the answer seen first
    assert weighted_vote(keys, [0.9, 0.1, 0.1, 0.5, 5.0]) == 0  # a 0.9 > c 0.5 > b 0.2; None never votes
    assert weighted_vote([None, None]) is None
    scores = [0.2, 0.9, None, 0.95]
    assert best_of_n(scores, k=1) == 0 and best_of_n(scores, k=3) == 1 and best_of_n(scores) == 3
    assert best_of_n([None, None]) is None
    assert weighted_best_of_n(["a", "b", "b", "c"], [0.2, 0.5, 0.4, 0.8]) == 1  # b 0.9 > c 0.8
    with pytest.raises(ValueError, match="k must be"):
        best_of_n(scores, k=5)
    assert vote_sizes(None, 8) == [1, 2, 4, 8] and vote_sizes(None, 6) == [1, 2, 4, 6]
    with pytest.raises(ValueError, match="vote sizes"):
        vote_sizes([1, 9], 8)


def test_step_score_aggregations():
    s = [0.9, 0.5, 0.8]
    assert aggregate(s, "last") == 0.8 and aggregate(s, "min") == 0.5
    assert aggregate(s, "prod") == pytest.approx(0.36) and aggregate(s, "mean") == pytest.approx(2.2 / 3)
    assert aggregate([], "min") is None
    with pytest.raises(ValueError, match="aggregation must be one of"):
        aggregate(s, "max")


def sample(item: str, index: int, canonical: str | None, correct: bool, tokens: int, score: float) -> SampleRecord:
    g = Generation(prompt_id=item, sample_index=index, setting="sample:think<=64", thinking_tokens=tokens - 2,
                   answer_tokens=2, meta={"method": "sample", "canonical": canonical, "scores": {"v": [0.5, score]}})
    return SampleRecord("t", g, correct=correct, extracted=canonical, reason="", gold="x")


def test_curves_from_one_n_sample_run_match_hand_computed_values():
    # item p: answers A B B C (B right); item q: D D E E (E right); "v" scores its last step highest
    recs = [sample("p", i, a, a == "B", 10 * (i + 1), s)
            for i, (a, s) in enumerate(zip("ABBC", [0.2, 0.9, 0.1, 0.95], strict=True))]
    recs += [sample("q", i, a, a == "E", 20, s) for i, (a, s) in enumerate(zip("DDEE", [0.6, 0.6, 0.7, 0.8],
                                                                                 strict=True))]
    points = {(p.method, p.setting): p for p in method_points(recs, how="last")}
    acc = {name: [points[name, f"k={k}"].accuracy for k in (1, 2, 4)] for name, _ in points}
    # p: maj@1 A wrong, maj@2 A/B tie -> A wrong, maj@4 B right; q: D, D, D/E tie -> D: always wrong
    assert acc["majority voting"] == [0.0, 0.0, 0.5]
    # best-of-k by the last step score: p: A, B, C; q: D, D (tie: first), E
    assert acc["best-of-N (v)"] == [0.0, 0.5, 0.5]
    # weighted at k=4: p: B 1.0 > C 0.95 > A 0.2; q: E 1.5 > D 1.2
    assert acc["weighted best-of-N (v)"] == [0.0, 0.5, 1.0]
    # unbiased pass@k: p has 2 of 4 right, q 2 of 4
    assert acc[PASS_AT_K] == pytest.approx([0.5, 1 - 1 / 6, 1.0])
    assert acc[PASS_AT_K][1] == pytest.approx(pass_at_k(4, 2, 2))
    # compute: the first k samples (p: 10, 20, 30, 40 tokens; q: 20 each)
    assert [points["majority voting", f"k={k}"].tokens for k in (1, 2, 4)] == [15.0, 35.0, 90.0]
    assert points[PASS_AT_K, "k=2"].tokens == pytest.approx((2 * 25 + 2 * 20) / 2)  # k times the mean sample
    curves = {c.method: c for c in method_curves(list(points.values()))}
    assert curves[PASS_AT_K].reference and not curves["majority voting"].reference
    assert curves["majority voting"].control is None and curves["weighted best-of-N (v)"].performance == 1.0
    low, high = equal_compute(list(curves.values()), levels=[40, 100])
    assert low.best == {"majority voting": 0.0, "best-of-N (v)": 0.5, "weighted best-of-N (v)": 0.5}
    assert low.winners == ("best-of-N (v)", "weighted best-of-N (v)")  # a tie names both
    assert high.winners == ("weighted best-of-N (v)",) and PASS_AT_K not in high.best
