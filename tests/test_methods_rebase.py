"""REBASE: the width allocation matches hand-computed examples exactly, a tree never holds more than
width W live paths, its token count is cumulative over every node and answer, and a step cut short at
its start continues from what it has (the prompt appears once in every context)."""

from __future__ import annotations

import pytest

from s1.backends import load_backend
from s1.backends.hf.step_sampler import HFStepSampler
from s1.forcing.policy import BudgetPolicy, SamplingSettings
from s1.forcing.request import Request
from s1.methods.rebase import Node, RebaseConfig, Tree, allocate_width, rebase_search, select_leaf
from s1.methods.steps import parse_separator, split_steps
from s1.methods.verifiers import Candidate, Scored
from s1.records import Generation
from s1.synthetic.benchmark import heldout_items

T = SamplingSettings(temperature=1.0, seed=7)


def test_width_allocation_by_hand():
    # softmax([0.9, 0.5, 0.1] / 0.2) = e^4.5, e^2.5, e^0.5 over their sum = 0.8668, 0.1173, 0.0159
    # width 8: ceil(6.93) = 7 for the best node, ceil(0.94) = 1 for the next, nothing left for the third
    assert allocate_width([0.9, 0.5, 0.1], 8) == [7, 1, 0]
    assert allocate_width([0.1, 0.9, 0.5], 8) == [0, 7, 1]  # handed out in descending score order
    assert allocate_width([0.9, 0.5, 0.1], 4) == [4, 0, 0]  # ceil(3.47) = 4 takes it all
    # equal scores: 4/3 each, rounded up to 2: the first two nodes take the whole width
    assert allocate_width([0.5, 0.5, 0.5], 4) == [2, 2, 0]
    # a hotter softmax spreads the width: weights 0.4013, 0.3289, 0.2693 of 5 -> ceil 2.007, 1.64, 1.35
    assert allocate_width([0.9, 0.5, 0.1], 5, temperature=2.0) == [3, 2, 0]
    assert allocate_width([0.3], 3) == [3] and allocate_width([], 3) == [] and allocate_width([0.2, 0.1], 0) == [0, 0]
    with pytest.raises(ValueError, match="temperature must be > 0"):
        allocate_width([0.1], 2, temperature=0)


def test_step_splitting_and_separators():
    assert split_steps("a\n\nb\n c \n", "\n") == ["a", "b", "c"]
    assert split_steps("Step 1: x Step 2: y", "Step") == ["1: x", "2: y"]
    assert parse_separator("\\n\\n") == "\n\n" and parse_separator("Step") == "Step"
    with pytest.raises(ValueError, match="non-empty"):
        parse_separator("")


class Fixed:
    """A process verifier that likes short steps: 1 / (1 + characters / 50)."""

    name = "fixed"

    def __init__(self):
        self.calls = 0

    def score(self, candidates):
        self.calls += len(candidates)
        return [Scored(tuple(1 / (1 + len(s) / 50) for s in c.steps)) for c in candidates]


@pytest.fixture(scope="module")
def backend():
    return load_backend(None, format="s1", device="cpu", batch_size=16)


def test_trees_stay_within_width_and_count_every_token(backend):
    items = heldout_items(3)
    requests = [Request(it.id, messages=it.question) for it in items]
    config = RebaseConfig(width=3, max_depth=6, max_thinking_tokens=48, max_answer_tokens=8)
    trees = rebase_search(backend, requests, [it.question for it in items], Fixed(), config, T)
    for tree in trees:
        leaves = tree.leaves
        assert 1 <= len(leaves) <= 3 and len(tree.answers) == len(leaves)
        for depth, live in enumerate(tree.widths(), start=1):
            finished_before = sum(n.leaf and n.depth < depth for n in tree.nodes)
            assert live + finished_before <= 3, (depth, tree.widths())
        for leaf in leaves:
            path = tree.path(leaf.id)
            assert path[0].parent is None and [n.depth for n in path] == list(range(1, leaf.depth + 1))
            assert leaf.ended or leaf.capped
            gen = tree.answers[leaf.id]
            assert gen.error is None and gen.thinking_closed and gen.cap_hit == leaf.capped
            assert gen.thinking_tokens == sum(n.tokens for n in path)  # the path, re-read, is the same tokens
        assert tree.generated_tokens == sum(n.tokens for n in tree.nodes) + sum(
            g.answer_tokens + g.answer_forced_tokens for g in tree.answers.values())
        assert tree.generated_tokens > max(g.thinking_tokens for g in tree.answers.values())  # cumulative
    # every path respects the caps
    assert all(n.depth <= 6 and tree.path_tokens(n.id) <= 48 for tree in trees for n in tree.nodes)
    assert any(n.capped for tree in trees for n in tree.nodes)  # 48 tokens is too short for a column check


def test_same_seed_same_tree(backend):
    items = heldout_items(2)
    requests = [Request(it.id, messages=it.question) for it in items]
    config = RebaseConfig(width=2, max_depth=8, max_thinking_tokens=64, max_answer_tokens=8)
    first = rebase_search(backend, requests, [it.question for it in items], Fixed(), config, T)
    alone = rebase_search(backend, requests[1:], [items[1].question], Fixed(), config, T)
    assert [n.text for n in first[1].nodes] == [n.text for n in alone[0].nodes]  # not changed by the batch


def test_final_answer_by_weighted_majority_or_best_leaf():
    # a strong leaf answers A; two weaker leaves (below a 0.6 node) agree on B; one leaf has no answer
    tree = Tree(Request("q", messages="q"), "q", [1, 2])
    for node in [Node(0, None, 1, "a\n", 3, True, 0.9, leaf=True), Node(1, None, 1, "b\n", 3, False, 0.6),
                 Node(2, 1, 2, "c\n", 3, True, 0.5, leaf=True), Node(3, 1, 2, "d\n", 3, True, 0.55, leaf=True),
                 Node(4, None, 1, "e\n", 3, True, 0.99, leaf=True)]:
        tree.nodes.append(node)
        if node.leaf:
            tree.answers[node.id] = Generation("q")
    canonical = {0: "A", 2: "B", 3: "B", 4: None}
    # leaf weights by min over the path: 0.9 (A), 0.5 and 0.55 (B): B totals 1.05 > 0.9
    assert tree.leaf_weight(tree.nodes[2], "min") == 0.5 and tree.leaf_weight(tree.nodes[3], "prod") == 0.6 * 0.55
    assert select_leaf(tree, canonical, "weighted", "min") == 3  # B, represented by its best leaf
    assert select_leaf(tree, canonical, "best", "min") == 0  # the unanswered 0.99 leaf never wins
    # by product the B leaves weigh 0.3 and 0.33: A's 0.9 wins the weighted vote too
    assert select_leaf(tree, canonical, "weighted", "prod") == 0
    assert select_leaf(tree, {0: None, 2: None, 3: None, 4: None}, "weighted", "min") is None


def test_a_step_cut_at_its_start_continues_without_repeating_the_prompt(backend):
    # separator "Mental": the tiny model starts mental-math steps with it, so generation stops right
    # after that first word; that is not a step yet, so the row continues from it in a second round
    sampler = HFStepSampler(backend, "Mental", T)
    rounds: list[tuple[list[list[int]], list[list[int]]]] = []
    original = sampler._generate

    def spy(contexts, samplers, quotas):
        out = original(contexts, samplers, quotas)
        rounds.append(([list(c) for c in contexts], out))
        return out

    sampler._generate = spy
    item = next(it for it in heldout_items(40) if "Mental" in it.thinking)
    prompt = sampler.encode_prompt(item.question)
    steps = sampler.sample([prompt] * 8, [""] * 8, list(range(8)), [150] * 8)
    assert len(rounds) >= 2, "no row started with the separator; pick another item"
    (first_ctx, first_out), (second_ctx, second_out) = rounds[:2]
    mental = backend.tokenizer.encode("Mental", add_special_tokens=False)
    assert all(ctx == prompt for ctx in first_ctx)
    assert all(ctx == prompt + mental for ctx in second_ctx)  # continues from what it has, prompt once
    continued = [s for s in steps if s.text.startswith("Mental")]
    assert len(continued) == len(second_ctx)
    ends = backend.forcing_tokens(BudgetPolicy()).end_triggers
    for step, out in zip(continued, second_out, strict=True):
        body = out[: next((j for j, t in enumerate(out) if t in ends), len(out))]
        assert step.tokens == len(mental) + len(body)  # both rounds' tokens, cumulative


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="rebase width must be an integer >= 1"):
        RebaseConfig(width=0)
    with pytest.raises(ValueError, match="rebase select must be one of weighted, best"):
        RebaseConfig(select="vote")
    with pytest.raises(ValueError, match="rebase aggregate"):
        RebaseConfig(aggregate="max")
    assert Candidate("q", "a\nb").steps == ["a", "b"]
