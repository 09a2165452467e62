"""The forcing machine and the policy, driven by scripted proposals (no model)."""

from __future__ import annotations

import pytest

from s1.forcing.machine import ForcingMachine, ForcingTokens, Phase
from s1.forcing.policy import BudgetPolicy, PolicyError, SamplingSettings
from s1.records import Kind

CLOSER, STOP, EOS = 100, 101, 102
NL, WORD = 10, 5
TOKENS = ForcingTokens(
    end_triggers=frozenset({CLOSER, STOP, EOS}),
    closer=(CLOSER, 110, 111),
    cap_newline=(NL, CLOSER, 110, 111, 120),
    cap_plain=(CLOSER, 110, 111, 120),
    ignores=((130,),),
    answer_stops=frozenset({STOP, EOS}),
    end_token=EOS,
    newline_tokens=frozenset({NL}),
)


def machine(tokens=TOKENS, **kw) -> ForcingMachine:
    policy = BudgetPolicy(**{"max_thinking_tokens": 50, **kw})
    return ForcingMachine.for_policy(policy, tokens, policy.max_thinking_tokens)


def drive(m: ForcingMachine, propose, limit: int = 1000) -> list[int]:
    """Run the machine like an engine: forced token if any, else the scripted model's proposal."""
    out: list[int] = []
    step = 0
    while not m.done and len(out) < limit:
        token = m.forced()
        if token is None:
            token = propose(step, m)
            assert token not in m.banned(), "engine would never sample a banned token"
            step += 1
        out.append(m.feed(token))
    return out


def test_cap_forces_after_exactly_the_budget_of_sampled_tokens():
    m = machine(max_thinking_tokens=7, max_answer_tokens=3)
    out = drive(m, lambda i, m: WORD)
    assert m.thinking_tokens == 7 and m.cap_hit
    assert out == [WORD] * 7 + list(TOKENS.cap_newline) + [WORD] * 3 + [EOS]
    assert m.finish_reason == "length" and m.answer_tokens == 3
    assert m.answer_forced == len(TOKENS.cap_newline) and m.thinking_forced == 0


def test_cap_drops_its_newline_after_a_newline():
    m = machine(max_thinking_tokens=3, max_answer_tokens=1)
    out = drive(m, lambda i, m: NL if i == 2 else WORD)
    assert out[:3] == [WORD, WORD, NL]
    assert out[3:7] == list(TOKENS.cap_plain)


def test_zero_budget_caps_at_once_after_the_opener_newline():
    m = machine(max_thinking_tokens=0, max_answer_tokens=2)
    out = drive(m, lambda i, m: WORD)
    assert out[:4] == list(TOKENS.cap_plain) and m.thinking_tokens == 0


@pytest.mark.parametrize("k", [0, 1, 2, 4])
def test_num_ignore_replaces_exactly_k_natural_ends(k):
    m = machine(num_ignore=k, max_answer_tokens=2)
    # the model tries to stop (STOP) after every 3 words
    out = drive(m, lambda i, m: STOP if i % 4 == 3 else WORD)
    assert m.ignores_applied == k and out.count(130) == k
    assert m.kinds.count(Kind.IGNORE) == k and m.thinking_forced == k
    assert m.thinking_tokens == 3 * (k + 1)
    # the last natural end (a non-closer trigger) is replaced by the whole closer
    close_at = out.index(CLOSER)
    assert out[close_at:close_at + 3] == [CLOSER, 110, 111] and not m.cap_hit


def test_a_sampled_closer_is_kept_and_completed():
    m = machine(max_answer_tokens=1)
    out = drive(m, lambda i, m: CLOSER if i == 2 else WORD)
    assert out[:5] == [WORD, WORD, CLOSER, 110, 111]
    assert m.kinds[2:5] == [Kind.CLOSE] * 3 and m.phase is Phase.DONE


def test_ignore_strings_cycle_in_order():
    tokens = ForcingTokens(**{**TOKENS.__dict__, "ignores": ((130,), (131, 132), (133,))})
    m = machine(tokens, num_ignore=5, max_answer_tokens=1)
    out = drive(m, lambda i, m: EOS if i % 2 == 1 else WORD)
    forced = [t for t, kind in zip(out, m.kinds, strict=False) if kind is Kind.IGNORE]
    assert forced == [130, 131, 132, 133, 130, 131, 132]


def test_min_thinking_suppress_masks_every_end_until_the_minimum():
    m = machine(min_thinking_tokens=5, max_answer_tokens=1)
    seen_banned = []

    def propose(i, m):
        seen_banned.append(m.banned())
        return EOS if not m.banned() else WORD  # stops as soon as it is allowed to

    drive(m, propose)
    assert m.thinking_tokens == 5 and m.ignores_applied == 0
    assert all(b == TOKENS.end_triggers for b in seen_banned[:5]) and seen_banned[5] == frozenset()


def test_min_thinking_wait_turns_early_ends_into_ignores_without_using_num_ignore():
    m = machine(min_thinking_tokens=4, min_thinking_mode="wait", num_ignore=1, max_answer_tokens=1)
    out = drive(m, lambda i, m: EOS if i % 2 == 1 else WORD)
    # ends at 1, 2, 3 sampled are below the minimum (wait); the end at 4 uses the one ignore round
    assert m.ignores_applied == 4 and out.count(130) == 4
    assert m.thinking_tokens == 5


def test_answer_stops_at_a_stop_token():
    m = machine(max_thinking_tokens=1, max_answer_tokens=10)
    out = drive(m, lambda i, m: STOP if i == 3 else WORD)
    assert m.finish_reason == "stop" and out[-1] == STOP and m.answer_tokens == 2


def test_feeding_something_else_than_the_forced_token_is_a_bug():
    m = machine(max_thinking_tokens=0)
    assert m.forced() == CLOSER
    with pytest.raises(RuntimeError, match="forced"):
        m.feed(WORD)


def test_multi_round_helpers_take_forced_and_end_thinking():
    m = machine(num_ignore=1, max_answer_tokens=1)
    for _ in range(3):
        m.feed(WORD)
    assert m.end_thinking() == [130]  # first natural end -> ignore
    m.feed(WORD)
    assert m.end_thinking() == [CLOSER, 110, 111] and m.phase is Phase.ANSWER
    m.feed(WORD)
    assert m.take_forced() == [EOS] and m.finish_reason == "length"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_thinking_tokens": -1}, "max_thinking_tokens"),
        ({"max_thinking_tokens": "lots"}, "max_thinking_tokens"),
        ({"max_thinking_tokens": True}, "max_thinking_tokens"),
        ({"min_thinking_tokens": -3}, "min_thinking_tokens"),
        ({"max_thinking_tokens": 10, "min_thinking_tokens": 11}, "min_thinking_tokens"),
        ({"min_thinking_mode": "maybe"}, "min_thinking_mode"),
        ({"num_ignore": -1}, "num_ignore"),
        ({"ignore_strings": ("Wait", "")}, "ignore_strings"),
        ({"ignore_strings": ()}, "ignore_strings"),
        ({"max_answer_tokens": 0}, "max_answer_tokens"),
    ],
)
def test_bad_policies_name_the_field(kwargs, field):
    with pytest.raises(PolicyError, match=field):
        BudgetPolicy(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"temperature": -0.1}, "temperature"), ({"top_p": 0}, "top_p"), ({"top_p": 1.5}, "top_p"),
     ({"top_k": -1}, "top_k"), ({"seed": -2}, "seed")],
)
def test_bad_sampling_settings_name_the_field(kwargs, field):
    with pytest.raises(PolicyError, match=field):
        SamplingSettings(**kwargs)


def test_auto_budget_resolves_from_the_context_and_fails_clearly():
    p = BudgetPolicy(max_answer_tokens=100)
    assert p.resolve_thinking_budget(1000, 200, reserve=10) == 690
    with pytest.raises(PolicyError, match="context"):
        p.resolve_thinking_budget(None, 10)
    with pytest.raises(PolicyError, match="shorten the prompt"):
        p.resolve_thinking_budget(250, 200)


def test_a_single_ignore_string_is_a_tuple_and_answer_sampling_defaults_to_thinking():
    p = BudgetPolicy(ignore_strings="Hmm", thinking=SamplingSettings(temperature=0.7, seed=1))
    assert p.ignore_strings == ("Hmm",)
    assert p.answer_sampling == p.thinking


def test_snapshot_and_restore_take_back_a_step_and_peek_changes_nothing():
    m = machine(max_thinking_tokens=2, num_ignore=1, max_answer_tokens=2)
    m.feed(WORD)
    state = m.snapshot()
    assert m.feed(EOS) == 130 and m.ignores_applied == 1  # a natural end replaced by the ignore string
    m.restore(state)
    assert m.ignores_applied == 0 and m.kinds == [Kind.THINK] and m.peek() is None
    m.feed(WORD)
    assert m.peek() == NL and not m.cap_hit  # the cap is due, but only forced() commits it
    assert m.forced() == NL and m.cap_hit


def test_min_tokens_after_an_ignore_masks_the_ends_of_thinking_for_that_many_tokens():
    m = machine(max_thinking_tokens=40, num_ignore=2, min_tokens_after_ignore=2)
    assert not m.banned()
    m.feed(WORD)
    m.feed(EOS)  # -> the ignore string
    assert m.banned() == TOKENS.end_triggers and m.ban_left() == 2
    m.feed(WORD)
    assert m.ban_left() == 1
    m.feed(WORD)
    assert not m.banned() and m.ban_left() == 0


def test_rebuild_from_ids_and_replaced_positions_equals_the_engines_machine():
    """What a client does with a server's output: a fresh machine fed the ids, told where a natural end
    was replaced, accounts for them exactly as the machine that made them."""
    from s1.forcing.request import Request
    from s1.forcing.sequence import rebuild

    policy = BudgetPolicy(max_thinking_tokens=6, num_ignore=2, max_answer_tokens=3)
    made = ForcingMachine.for_policy(policy, TOKENS, 6)
    script = iter([WORD, EOS, WORD, WORD, STOP, WORD, WORD, WORD, WORD, WORD, EOS])
    ids, replaced = [], set()
    while not made.done:
        token = made.forced()
        proposal = next(script) if token is None else token
        got = made.feed(proposal)
        if got != proposal:
            replaced.add(len(ids))
        ids.append(got)
    seq = rebuild(Request("q", prompt="x"), policy, TOKENS, 6, "x", [1], ids, replaced)
    m = seq.machine
    assert seq.emitted == ids and m.kinds == made.kinds
    assert (m.thinking_tokens, m.thinking_forced, m.answer_tokens, m.ignores_applied, m.cap_hit) == (
        made.thinking_tokens, made.thinking_forced, made.answer_tokens, made.ignores_applied, made.cap_hit)
    with pytest.raises(RuntimeError, match="disagree"):  # marks that cannot be right are an error, never a guess
        rebuild(Request("q", prompt="x"), policy, TOKENS, 6, "x", [1], ids, set())
