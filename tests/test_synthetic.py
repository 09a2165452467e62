"""Tests for the synthetic reasoning tasks: verifiers, traces, determinism and splits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from statistics import mean

import pytest

from s1.synthetic import (
    CONFIRM_LINE,
    DIFFICULTIES,
    FAMILIES,
    FAMILY_NAMES,
    FIX_LINE,
    WAIT_LINE,
    SyntheticItem,
    check_answer,
    extract_answer,
    generate,
    recheck_kind,
    split_of,
    verify,
)
from s1.synthetic.letters import WORDS_BY_DIFFICULTY
from s1.synthetic.words import WORDS

REPO = Path(__file__).resolve().parents[1]


def _item(family: str, answer: str) -> SyntheticItem:
    return SyntheticItem(
        id=f"{family}/manual/0/0",
        family=family,
        difficulty=1,
        question="(hand-written)",
        answer=answer,
        thinking="",
        response=f"Answer: {answer}",
    )


def _full(item: SyntheticItem) -> str:
    return item.thinking + "\n" + item.response


def _before_wait(item: SyntheticItem) -> str:
    return item.thinking.split("\n" + WAIT_LINE, 1)[0]


# ---------------------------------------------------------------- extraction


def test_extract_prefers_answer_then_boxed_then_so_the_answer_is() -> None:
    text = "So the answer is 1.\n\\boxed{2}\nAnswer: 3"
    assert extract_answer(text) == "3"
    assert extract_answer("So the answer is 1.\nthen \\boxed{2} done") == "2"
    assert extract_answer("So the answer is 1.\nhmm\nSo the answer is 4.") == "4"
    assert extract_answer("Answer: 5\nmore\nAnswer: 6.") == "6"
    assert extract_answer("\\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert extract_answer("Answer: \\boxed{7}") == "7"


@pytest.mark.parametrize("text", ["", "   ", "Answer:", "Answer:   \n", "\\boxed{}", "So the answer is .", "42"])
def test_extract_returns_none_without_a_usable_answer(text: str) -> None:
    assert extract_answer(text) is None


def test_extract_skips_an_empty_trailing_answer_line() -> None:
    assert extract_answer("So the answer is 9.\nAnswer:") == "9"


# ---------------------------------------------------------------- verifiers on hand-written cases

VERIFY_CASES: dict[str, tuple[str, list[str], list[str]]] = {
    "addition": (
        "1589",
        ["Answer: 1589", "Answer: 01589.", "\\boxed{1589}", "So the answer is 1,589.", "Answer:  **1589** "],
        ["Answer: 1588", "Answer: 1589 apples", "Answer: 15 89", "Answer: 1589.5", "So the answer is 1489."],
    ),
    "multiplication": (
        "29766",
        ["Answer: 29766", "The answer is 029766", "$\\boxed{29766}$", "Answer: +29766"],
        ["Answer: 29767", "Answer: 2976", "Answer: 29,76,6", "Answer: x"],
    ),
    "count_letter": (
        "3",
        ["Answer: 3", "Answer: 003", "So the answer is 3.", "Final answer: 3"],
        ["Answer: 2", "Answer: three", "Answer: 3.5", "Answer: -3", "Answer: 3 r's"],
    ),
    "sort": (
        "0, 3, 7",
        ["Answer: 0, 3, 7", "Answer: [0, 3, 7]", "Answer: 0 3 7", "\\boxed{0,3,7}", "So the answer is (0; 3; 7)."],
        ["Answer: 3, 0, 7", "Answer: 0, 3", "Answer: 0, 3, 7, 7", "Answer: 0, 3, x", "Answer: []"],
    ),
    "arith_chain": (
        "55",
        ["Answer: 55", "So the answer is 55.", "Answer: 55.\n", "Answer:\n\\boxed{55}"],
        ["Answer: 56", "Answer: -55", "Answer: 5 5", "Answer: 55 eggs"],
    ),
}


def test_verify_cases_cover_every_family() -> None:
    assert set(VERIFY_CASES) == set(FAMILIES)


@pytest.mark.parametrize("family", list(VERIFY_CASES))
def test_verify_accepts_right_answers_in_several_forms(family: str) -> None:
    gold, good, _ = VERIFY_CASES[family]
    item = _item(family, gold)
    for text in good:
        assert verify(item, text), text
        assert verify(item, "thinking...\n" + text), text


@pytest.mark.parametrize("family", list(VERIFY_CASES))
def test_verify_rejects_wrong_answers(family: str) -> None:
    gold, _, bad = VERIFY_CASES[family]
    item = _item(family, gold)
    for text in bad:
        assert not verify(item, text), text


@pytest.mark.parametrize("family", list(VERIFY_CASES))
@pytest.mark.parametrize("text", ["", "   \n", "Answer:", "no idea", "\\boxed{", "Answer: ???"])
def test_verify_rejects_empty_or_malformed_output(family: str, text: str) -> None:
    assert not verify(_item(family, VERIFY_CASES[family][0]), text)


def test_last_answer_wins_so_a_corrected_answer_counts() -> None:
    item = _item("addition", "122")
    assert verify(item, "Answer: 112\nWait, recheck.\nAnswer: 122")
    assert not verify(item, "Answer: 122\nWait, recheck.\nAnswer: 112")


def test_check_answer_never_credits_unparseable_or_missing() -> None:
    assert check_answer("sort", "1 2 3", "1, 2, 3")
    assert not check_answer("sort", None, "1, 2, 3")
    assert not check_answer("addition", "", "0")
    with pytest.raises(ValueError, match="family must be one of"):
        check_answer("nope", "1", "1")


# ---------------------------------------------------------------- generated items


@pytest.fixture(scope="module")
def mixed_items() -> dict[str, list[SyntheticItem]]:
    """A few hundred items per family with plenty of both kinds of re-check."""
    return {f: generate(f, 300, seed=11, recheck_prob=0.4, confirm_prob=0.5) for f in FAMILY_NAMES}


def test_every_generated_item_verifies(mixed_items: dict[str, list[SyntheticItem]]) -> None:
    for family, items in mixed_items.items():
        assert len(items) == 300
        for item in items:
            assert item.family == family
            assert item.difficulty in DIFFICULTIES
            assert item.response == f"Answer: {item.answer}"
            assert verify(item, _full(item)), item.id
            assert verify(item, item.thinking), item.id
            assert item.thinking.splitlines()[-1] == f"So the answer is {item.answer}."


def test_traces_are_plain_ascii_one_step_per_line(mixed_items: dict[str, list[SyntheticItem]]) -> None:
    for items in mixed_items.values():
        for item in items:
            text = item.question + _full(item)
            assert text.isascii(), item.id
            lines = item.thinking.split("\n")
            assert all(line.strip() == line and line for line in lines), item.id


def test_wait_traces_fix_a_wrong_first_attempt(mixed_items: dict[str, list[SyntheticItem]]) -> None:
    for family, items in mixed_items.items():
        fixes = [i for i in items if recheck_kind(i.thinking) == "fix"]
        assert len(fixes) > 50, family
        for item in fixes:
            lines = item.thinking.splitlines()
            wait_at = lines.index(WAIT_LINE)
            assert lines[wait_at].startswith("Wait")
            assert lines[wait_at - 1].startswith("So the answer is ")  # tentative answer on its own line
            tentative = _before_wait(item)
            assert extract_answer(tentative) is not None
            assert not verify(item, tentative), item.id
            assert verify(item, item.thinking), item.id
            assert FIX_LINE in lines
            if lines[0].startswith("Mental math:"):  # a quick method re-checked by a careful one
                assert lines[wait_at + 1] == "Column by column from the right:"
                assert not any(x.startswith("Wrong: ") for x in lines)
                continue
            wrong = next(x for x in lines if x.startswith("Wrong: "))[len("Wrong: ") :]
            assert wrong in lines[:wait_at]  # the slip named is a step of the first attempt


def test_wait_traces_can_confirm_a_right_first_attempt(mixed_items: dict[str, list[SyntheticItem]]) -> None:
    for family, items in mixed_items.items():
        confirms = [i for i in items if recheck_kind(i.thinking) == "confirm"]
        assert len(confirms) > 20, family
        for item in confirms:
            assert CONFIRM_LINE in item.thinking.splitlines()
            assert verify(item, _before_wait(item)), item.id
            assert item.thinking.count("So the answer is ") == 2


def test_recheck_probabilities_control_the_trace_kinds() -> None:
    none = generate(None, 200, seed=3, recheck_prob=0.0, confirm_prob=0.0)
    assert {recheck_kind(i.thinking) for i in none} == {"direct"}
    assert all(WAIT_LINE not in i.thinking for i in none)
    every = generate(None, 200, seed=3, recheck_prob=1.0)
    assert {recheck_kind(i.thinking) for i in every} == {"fix"}
    # The questions never depend on the probabilities, only the traces do.
    assert [i.question for i in none] == [i.question for i in every]


def test_trace_lengths_stay_small_enough_for_a_tiny_model() -> None:
    for family in FAMILY_NAMES:
        easy = generate(family, 100, seed=5, difficulty=1)
        hard = generate(family, 100, seed=5, difficulty=5, recheck_prob=1.0)
        assert mean(len(i.thinking) for i in easy) < 400, family
        assert max(len(i.thinking) for i in hard) < 1500, family


def test_difficulty_increases_trace_length() -> None:
    for family in FAMILY_NAMES:
        plain = {
            d: generate(family, 80, seed=2, difficulty=d, recheck_prob=0.0, confirm_prob=0.0) for d in DIFFICULTIES
        }
        means = [mean(len(i.thinking) for i in plain[d]) for d in DIFFICULTIES]
        assert means == sorted(means) and len(set(means)) == len(means), (family, means)
        default = [mean(len(i.thinking) for i in generate(family, 150, seed=2, difficulty=d)) for d in (1, 5)]
        assert default[1] > 1.3 * default[0], (family, default)


def test_difficulty_argument_restricts_levels() -> None:
    assert {i.difficulty for i in generate("sort", 60, seed=0, difficulty=4)} == {4}
    assert {i.difficulty for i in generate("sort", 200, seed=0, difficulty=range(2, 4))} == {2, 3}
    assert {i.difficulty for i in generate("sort", 300, seed=0)} == set(DIFFICULTIES)


# ---------------------------------------------------------------- determinism and ids


def test_same_arguments_give_identical_items() -> None:
    for family in [*FAMILY_NAMES, None]:
        a = generate(family, 60, seed=123, split="heldout", difficulty=range(1, 6), recheck_prob=0.5)
        b = generate(family, 60, seed=123, split="heldout", difficulty=range(1, 6), recheck_prob=0.5)
        assert a == b


def test_different_seed_or_split_gives_different_items() -> None:
    for family in FAMILY_NAMES:
        a = generate(family, 40, seed=1)
        b = generate(family, 40, seed=2)
        assert [i.question for i in a] != [i.question for i in b]
        assert len({i.question for i in a} & {i.question for i in b}) < 20
        assert {i.id for i in a}.isdisjoint({i.id for i in b})


def test_ids_are_stable_unique_and_prefix_consistent() -> None:
    items = generate("addition", 30, seed=7)
    assert [i.id for i in items] == [f"addition/train/7/{k}" for k in range(30)]
    assert generate("addition", 10, seed=7) == items[:10]
    assert len({i.id for i in generate(None, 100, seed=7)}) == 100


def test_mixed_family_interleaves_the_per_family_streams() -> None:
    mixed = generate(None, 23, seed=9, split="heldout")
    k = len(FAMILY_NAMES)
    assert [i.family for i in mixed[:k]] == list(FAMILY_NAMES)
    for pos, item in enumerate(mixed):
        assert item == generate(item.family, pos // k + 1, seed=9, split="heldout")[pos // k]


def test_output_does_not_depend_on_pythonhashseed() -> None:
    code = (
        "import json,hashlib; from s1.synthetic import generate; "
        "print(hashlib.sha256(json.dumps([i.to_dict() for i in generate(None, 50, 4)]).encode()).hexdigest())"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_items_round_trip_through_json() -> None:
    for item in generate(None, 20, seed=1, recheck_prob=0.5):
        data = json.loads(json.dumps(item.to_dict()))
        assert set(data) == {"id", "family", "difficulty", "question", "answer", "thinking", "response"}
        assert SyntheticItem.from_dict(data) == item


def test_from_dict_rejects_bad_records() -> None:
    data = generate("sort", 1, seed=0)[0].to_dict()
    with pytest.raises(ValueError, match="missing field"):
        SyntheticItem.from_dict({k: v for k, v in data.items() if k != "answer"})
    with pytest.raises(ValueError, match="difficulty"):
        SyntheticItem.from_dict({**data, "difficulty": "3"})


def test_items_are_frozen() -> None:
    item = generate("sort", 1, seed=0)[0]
    with pytest.raises(AttributeError):
        item.answer = "1"  # type: ignore[misc]


# ---------------------------------------------------------------- splits


def test_heldout_questions_never_appear_in_train() -> None:
    for family in FAMILY_NAMES:
        train = {i.question for s in (0, 1) for i in generate(family, 1500, seed=s)}
        train |= {i.question for i in generate(family, 1000, seed=2, difficulty=1)}
        heldout = generate(family, 300, seed=0, split="heldout")
        heldout += generate(family, 100, seed=5, split="heldout", difficulty=1)
        assert len(train) > 1000
        assert train.isdisjoint(i.question for i in heldout), family
        assert all(split_of(family, i.question) == "heldout" for i in heldout)
        assert all(split_of(family, q) == "train" for q in train)


def test_heldout_items_are_distinct_when_the_space_allows() -> None:
    for family in FAMILY_NAMES:
        items = generate(family, 200, seed=0, split="heldout", difficulty=range(3, 6))
        assert len({i.question for i in items}) == 200, family


# ---------------------------------------------------------------- argument validation


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"family": "division"}, r"family must be one of \['addition', 'multiplication'.*got 'division'"),
        ({"family": 3}, r"family must be one of"),
        ({"n": -1}, r"n must be a non-negative integer, got -1"),
        ({"n": 2.5}, r"n must be a non-negative integer"),
        ({"seed": "x"}, r"seed must be an integer"),
        ({"split": "test"}, r"split must be one of \['train', 'heldout'\], got 'test'"),
        ({"difficulty": 0}, r"difficulty must be an int in 1\.\.5.*got 0"),
        ({"difficulty": 6}, r"difficulty must be an int in 1\.\.5.*got 6"),
        ({"difficulty": range(0, 3)}, r"difficulty must be .*range"),
        ({"difficulty": range(3, 3)}, r"difficulty must be"),
        ({"difficulty": "2"}, r"difficulty must be"),
        ({"difficulty": True}, r"difficulty must be"),
        ({"recheck_prob": 1.5}, r"recheck_prob must be a number in \[0, 1\], got 1\.5"),
        ({"confirm_prob": -0.1}, r"confirm_prob must be a number in \[0, 1\]"),
    ],
)
def test_bad_arguments_raise_value_error_naming_field(kwargs: dict, pattern: str) -> None:
    args = {"family": "addition", "n": 3, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        generate(**args)


def test_zero_items_is_allowed() -> None:
    assert generate("addition", 0, seed=0) == []
    assert generate(None, 0, seed=0) == []


# ---------------------------------------------------------------- embedded data


def test_word_list_is_clean_and_covers_every_difficulty() -> None:
    assert 300 <= len(WORDS) == len(set(WORDS))
    assert all(w.isascii() and w.isalpha() and w.islower() for w in WORDS)
    lengths = [max(len(w) for w in WORDS_BY_DIFFICULTY[d]) for d in DIFFICULTIES]
    assert lengths == sorted(lengths)
    assert all(len(WORDS_BY_DIFFICULTY[d]) >= 40 for d in DIFFICULTIES)


def test_count_letter_questions_match_their_answers() -> None:
    for item in generate("count_letter", 200, seed=1):
        letter = item.question.split("How many ")[1][0]
        word = item.question.rstrip("?").split()[-1]
        assert item.answer == str(word.count(letter))


def test_a_second_recheck_confirms_the_first_and_keeps_the_answer() -> None:
    items = generate("addition", 200, seed=4, difficulty=1, recheck_prob=0.5, confirm_prob=0.5, double_prob=1.0)
    twice = [i for i in items if i.thinking.count(WAIT_LINE) == 2]
    assert twice and all(recheck_kind(i.thinking) != "direct" for i in twice)
    assert {recheck_kind(i.thinking) for i in items} - {"direct"} == {"fix", "confirm"}
    for item in twice:
        lines = item.thinking.splitlines()
        assert lines[-2] == CONFIRM_LINE and verify(item, item.thinking)
        second = lines.index(WAIT_LINE, lines.index(WAIT_LINE) + 1)
        assert verify(item, "\n".join(lines[:second]))  # the answer before the second Wait is already right
    assert all(i.thinking.count(WAIT_LINE) <= 1 for i in generate("addition", 100, seed=4, recheck_prob=0.5))
    with pytest.raises(ValueError, match="double_prob"):
        generate("addition", 1, seed=0, double_prob=2.0)


def test_hasty_traces_stop_at_a_dropped_carry_only_where_the_shortcut_tempts() -> None:
    from s1.synthetic.base import Problem
    from s1.synthetic.families import FAMILIES

    addition = FAMILIES["addition"]
    # 36 + 94: the ones make exactly 10 and the tens carry anyway, so the forgotten carry gives 120
    tempting = Problem("What is 36 + 94?", "130", (), (36, 94))
    assert addition.tempts_haste(tempting)
    assert not addition.tempts_haste(Problem("What is 47 + 85?", "132", (), (47, 85)))  # ones make 12
    assert not addition.tempts_haste(Problem("What is 52 + 61?", "113", (), (52, 61)))  # no carry to drop
    items = generate("addition", 400, seed=2, difficulty=1, hasty_prob=1.0)
    hasty = [i for i in items if i.response != f"Answer: {i.answer}"]
    assert hasty and len(hasty) < len(items) // 3  # only the tempting minority
    for item in hasty:
        a, b = (int(x) for x in item.question[len("What is "):-1].split(" + "))
        assert addition.tempts_haste(Problem(item.question, item.answer, (), (a, b)))
        assert WAIT_LINE not in item.thinking and item.thinking.startswith("Mental math:")
        wrong = int(item.response.split()[-1])
        assert wrong == int(item.answer) - 10 and not verify(item, item.thinking)  # the dropped carry, uncaught
    assert generate("addition", 400, seed=2, difficulty=1) == generate("addition", 400, seed=2, difficulty=1,
                                                                          hasty_prob=0.0)
