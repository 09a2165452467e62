"""Rejection sampling stops at its first accepted attempt or at its attempt cap, reports the attempts,
counts every attempt's tokens, and under greedy decoding tries once."""

from __future__ import annotations

from dataclasses import replace

import pytest

from s1.backends import load_backend
from s1.forcing.policy import BudgetPolicy, SamplingSettings
from s1.forcing.request import Request
from s1.methods.rejection import rejection_sample
from s1.records import Generation
from s1.synthetic.benchmark import heldout_items

SAMPLED = BudgetPolicy(max_answer_tokens=8, thinking=SamplingSettings(temperature=1.0, seed=1))


class Scripted:
    """A backend whose n-th attempt at a request thinks `lengths[id][n]` tokens (None: it fails)."""

    name = "scripted"

    def __init__(self, lengths):
        self.lengths = lengths
        self.calls: list[tuple[list[tuple[str, int]], BudgetPolicy]] = []
        self.seen: dict[str, int] = {}

    def generate(self, requests, policy):
        self.calls.append(([(r.id, r.sample_index) for r in requests], policy))
        out = []
        for r in requests:
            attempt = self.seen[r.id] = self.seen.get(r.id, -1) + 1
            n = self.lengths[r.id][attempt]
            if n is None:
                out.append(Generation.failed(r.id, "boom", sample_index=r.sample_index))
                continue
            cap = policy.max_thinking_tokens
            out.append(Generation(prompt_id=r.id, sample_index=r.sample_index, thinking_tokens=min(n, cap),
                                  cap_hit=n >= cap, thinking_closed=True, answer_tokens=3, answer_forced_tokens=2,
                                  answer=f"Final Answer: {n}"))
        return out


def test_stops_at_the_first_fit_or_at_the_attempt_cap():
    backend = Scripted({"a": [30, 12, 5], "b": [40] * 10, "c": [10], "d": [None]})
    reqs = [Request(i, prompt="q") for i in "abcd"]
    a, b, c, d = rejection_sample(backend, reqs, budget=20, max_attempts=4, policy=SAMPLED)
    assert (a.attempts, a.accepted, a.generation.thinking_tokens) == (2, True, 12)
    assert (b.attempts, b.accepted) == (4, False)  # capped: never more than max_attempts
    assert (c.attempts, c.accepted) == (1, True)
    assert (d.attempts, d.accepted, d.generation.error) == (1, False, "boom")  # a failure is not retried
    # every attempt is counted: a rejected attempt costs budget + 1 thinking tokens plus its forced answer
    assert a.thinking_tokens == 21 + 12 and a.generated_tokens == 21 + 12 + 2 * 5
    assert b.generated_tokens == 4 * (21 + 5)
    # each attempt has its own random stream; the records keep the request's sample index
    streams = [ids for ids, _ in backend.calls]
    assert streams[0] == [("a", 0), ("b", 0), ("c", 0), ("d", 0)] and streams[1] == [("a", 1), ("b", 1)]
    assert all(p.max_thinking_tokens == 21 and p.num_ignore == 0 for _, p in backend.calls)
    assert a.generation.sample_index == 0


def test_a_natural_end_exactly_at_the_budget_is_accepted():
    (res,) = rejection_sample(Scripted({"a": [20]}), [Request("a", prompt="q")], 20, 3, SAMPLED)
    assert res.accepted and res.attempts == 1


def test_greedy_tries_once():
    backend = Scripted({"a": [40] * 10})
    (res,) = rejection_sample(backend, [Request("a", prompt="q")], 20, 8, BudgetPolicy())
    assert res.attempts == 1 and not res.accepted and len(backend.calls) == 1


def test_tiny_model_stops_at_its_attempt_cap_when_nothing_fits():
    backend = load_backend(None, format="s1", device="cpu")
    items = heldout_items(4)
    reqs = [Request(it.id, messages=it.question) for it in items]
    tight = rejection_sample(backend, reqs, budget=4, max_attempts=3, policy=SAMPLED)  # no trace is that short
    assert all(r.attempts == 3 and not r.accepted and r.generation.cap_hit for r in tight)
    assert all(r.thinking_tokens == 3 * 5 for r in tight)  # three attempts, each cut one token past the budget
    loose = rejection_sample(backend, reqs, budget=200, max_attempts=3, policy=SAMPLED)
    assert all(r.accepted and r.generation.thinking_tokens <= 200 for r in loose)
    assert all(r.generation.thinking_closed and not r.generation.cap_hit for r in loose)


@pytest.mark.parametrize(("kw", "message"), [({"budget": 0}, "rejection budget"),
                                             ({"max_attempts": 0}, "max_attempts")])
def test_bad_arguments_name_the_field(kw, message):
    args = {"budget": 10, "max_attempts": 2, **kw}
    with pytest.raises(ValueError, match=message):
        rejection_sample(Scripted({}), [], args["budget"], args["max_attempts"], SAMPLED)


def test_records_are_not_shared_between_attempts():
    backend = Scripted({"a": [30, 5]})
    (res,) = rejection_sample(backend, [replace(Request("a", prompt="q"), sample_index=2)], 20, 2, SAMPLED)
    assert backend.calls[0][0] == [("a", 4)] and backend.calls[1][0] == [("a", 5)]  # 2 * max_attempts + attempt
    assert res.generation.sample_index == 2 and res.generation.answer == "Final Answer: 5"
