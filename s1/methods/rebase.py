"""REBASE: reward-balanced tree search (Wu et al., 2024), as the s1 repo ran it.

Each tree grows one reasoning step per round. The first round samples `width` first steps; each new
node is scored by a process verifier (its score at its last step). A node whose thinking ended, or
that reached the depth or token cap, is a finished leaf and uses up one unit of width. The width
left (`width` minus the finished leaves) is shared among the round's unfinished nodes by
softmax(score / T), T = 0.2: in descending score order each node gets ceil(weight * width left)
children, no more than what remains, so the tree never holds more than `width` live paths. The search
ends when no width is left or no node gets children. Every leaf then gets its answer through the
backend, with the budget-forcing strings (the closer after a natural end, the cap after a cap), and
the final answer is the weighted majority over the leaves (weights: the aggregated step scores of
each leaf's path) or the best leaf.

Token accounting is per tree and cumulative: every sampled step token and every answer token (forced
closer or cap included) of every node, never the prompt; an expansion's context holds the prompt once
(a step cut short by a separator at its very start continues from what it has, nothing is repeated).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from s1.backends.hf.backend import HFBackend
from s1.backends.hf.step_sampler import HFStepSampler
from s1.forcing.binding import encode
from s1.forcing.machine import ForcingMachine
from s1.forcing.policy import BudgetPolicy, SamplingSettings
from s1.forcing.request import Branch, Request
from s1.grading.records import grade_records
from s1.methods.base import MethodWork, request_for
from s1.methods.verifiers import AGGREGATIONS, Candidate, Verifier, aggregate
from s1.methods.voting import canonical_answers
from s1.records import Generation, SampleRecord
from s1.tasks import TaskItem

if TYPE_CHECKING:
    from s1.backends.base import Backend
    from s1.methods.config import CompareConfig

SOFTMAX_TEMPERATURE = 0.2  # the s1 repo's REBASE temperature
SELECTIONS: tuple[str, ...] = ("weighted", "best")


def allocate_width(scores: Sequence[float], width: int, temperature: float = SOFTMAX_TEMPERATURE) -> list[int]:
    """Children per node: softmax(scores / temperature) shares of `width`, rounded up, handed out in
    descending score order (ties: earlier node first) until the width is used up."""
    if isinstance(width, bool) or not isinstance(width, int) or width < 0:
        raise ValueError(f"width must be an integer >= 0, got {width!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if not scores:
        return []
    top = max(scores)
    exps = [math.exp((s - top) / temperature) for s in scores]
    total = sum(exps)
    out = [0] * len(scores)
    left = width
    for i in sorted(range(len(scores)), key=lambda j: -scores[j]):
        if left <= 0:
            break
        n = min(math.ceil(exps[i] / total * width - 1e-9), left)
        out[i] = n
        left -= n
    return out


@dataclass(frozen=True)
class RebaseConfig:
    """Search settings. `max_thinking_tokens` caps each path's sampled thinking tokens, `max_depth` its
    steps; `aggregate` folds a leaf's step scores into its weight; `select` picks the final answer."""

    width: int = 4
    temperature: float = SOFTMAX_TEMPERATURE
    separator: str = "\n"
    max_depth: int = 32
    max_step_tokens: int = 64
    max_thinking_tokens: int = 512
    max_answer_tokens: int = 32
    aggregate: str = "min"
    select: str = "weighted"

    def __post_init__(self) -> None:
        for name in ("width", "max_depth", "max_step_tokens", "max_thinking_tokens", "max_answer_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"rebase {name} must be an integer >= 1, got {value!r}")
        if not self.temperature > 0:
            raise ValueError(f"rebase temperature must be > 0, got {self.temperature!r}")
        if not self.separator:
            raise ValueError("rebase separator must be a non-empty string")
        if self.aggregate not in AGGREGATIONS:
            raise ValueError(f"rebase aggregate must be one of {', '.join(AGGREGATIONS)}, got {self.aggregate!r}")
        if self.select not in SELECTIONS:
            raise ValueError(f"rebase select must be one of {', '.join(SELECTIONS)}, got {self.select!r}")


@dataclass
class Node:
    id: int
    parent: int | None
    depth: int
    text: str  # this step's text (with the separator that ended it)
    tokens: int  # sampled tokens of this step
    ended: bool  # the model ended its thinking in this step
    score: float | None = None  # the verifier's score at this step
    error: str | None = None
    leaf: bool = False
    capped: bool = False  # a leaf cut by the depth or token cap


@dataclass
class Tree:
    """One question's search tree; `answers` maps each leaf to its answered generation."""

    request: Request
    question: str
    prompt_ids: list[int]
    nodes: list[Node] = field(default_factory=list)
    answers: dict[int, Generation] = field(default_factory=dict)

    def path(self, node_id: int) -> list[Node]:
        out = []
        current: int | None = node_id
        while current is not None:
            node = self.nodes[current]
            out.append(node)
            current = node.parent
        return out[::-1]

    def thinking(self, node_id: int | None) -> str:
        return "" if node_id is None else "".join(n.text for n in self.path(node_id))

    def path_tokens(self, node_id: int | None) -> int:
        return 0 if node_id is None else sum(n.tokens for n in self.path(node_id))

    @property
    def leaves(self) -> list[Node]:
        return [n for n in self.nodes if n.leaf]

    def widths(self) -> list[int]:
        """Live nodes per depth (depth 1 first): what the width bound applies to, with the leaves
        finished at smaller depths."""
        depth = max((n.depth for n in self.nodes), default=0)
        return [sum(n.depth == d for n in self.nodes) for d in range(1, depth + 1)]

    @property
    def thinking_tokens(self) -> int:
        return sum(n.tokens for n in self.nodes)

    @property
    def generated_tokens(self) -> int:
        """Everything the search generated: every step of every node and every leaf's answer."""
        return self.thinking_tokens + sum(g.answer_tokens + g.answer_forced_tokens for g in self.answers.values())

    def leaf_weight(self, node: Node, how: str) -> float:
        scores = [0.0 if n.score is None else n.score for n in self.path(node.id)]
        value = aggregate(scores, how)
        return 0.0 if value is None else value


def _stream(request: Request, node_id: int) -> int:
    """A node's random stream: fixed by the question, the sample and the node, not by the batch."""
    base = zlib.crc32(f"{request.id}\0{request.sample_index}".encode())
    return (base << 20) + node_id


def rebase_search(backend: HFBackend, requests: Sequence[Request], questions: Sequence[str], verifier: Verifier,
                  config: RebaseConfig, sampling: SamplingSettings,
                  answer_sampling: SamplingSettings | None = None) -> list[Tree]:
    """Grow one tree per request (all trees advance together, a round per depth) and answer every
    leaf. `backend` is an `HFBackend` (steps are sampled on its model; answers come from its
    `continue_answers`). Returns the trees; pick answers with `select_leaf`."""
    if len(requests) != len(questions):
        raise ValueError("requests and questions must have the same length")
    if not isinstance(backend, HFBackend):
        raise ValueError("REBASE samples one step at a time on a transformers model: use the hf backend")
    sampler = HFStepSampler(backend, config.separator, sampling)
    trees = [Tree(r, q, sampler.encode_prompt(r.messages if r.messages is not None else q, r.system))
             for r, q in zip(requests, questions, strict=True)]
    pending: dict[int, list[tuple[int | None, int]]] = {t: [(None, config.width)] for t in range(len(trees))}
    step = max(1, backend.batch_size)
    while pending:
        rows: list[tuple[int, int | None]] = [(t, parent) for t, plan in pending.items()
                                               for parent, count in plan for _ in range(count)]
        counters = {t: len(trees[t].nodes) for t in pending}
        ids = []  # node ids are fixed before sampling: they pick the random streams
        for t, _ in rows:
            ids.append(counters[t])
            counters[t] += 1
        created: list[tuple[int, Node]] = []
        for start in range(0, len(rows), step):
            chunk, chunk_ids = rows[start : start + step], ids[start : start + step]
            steps = sampler.sample(
                [trees[t].prompt_ids for t, _ in chunk], [trees[t].thinking(p) for t, p in chunk],
                [_stream(trees[t].request, i) for (t, _), i in zip(chunk, chunk_ids, strict=True)],
                [max(1, min(config.max_step_tokens, config.max_thinking_tokens - trees[t].path_tokens(p)))
                 for t, p in chunk])
            for (t, parent), node_id, s in zip(chunk, chunk_ids, steps, strict=True):
                depth = 1 if parent is None else trees[t].nodes[parent].depth + 1
                created.append((t, Node(node_id, parent, depth, s.text, s.tokens, s.ended)))
        for t, node in sorted(created, key=lambda tn: (tn[0], tn[1].id)):
            trees[t].nodes.append(node)
        _score(trees, created, verifier, config.separator)
        pending = {}
        for t, tree in enumerate(trees):
            fresh = [n for tt, n in created if tt == t]
            for n in fresh:
                capped = n.depth >= config.max_depth or tree.path_tokens(n.id) >= config.max_thinking_tokens
                n.leaf = n.ended or capped
                n.capped = capped and not n.ended
            live = [n for n in fresh if not n.leaf]
            left = config.width - len(tree.leaves)
            if live and left > 0:
                alloc = allocate_width([0.0 if n.score is None else n.score for n in live], left, config.temperature)
                plan = [(n.id, a) for n, a in zip(live, alloc, strict=True) if a]
                if plan:
                    pending[t] = plan
    _answer(backend, trees, config, sampling, answer_sampling)
    return trees


def _score(trees: list[Tree], created: list[tuple[int, Node]], verifier: Verifier, separator: str) -> None:
    cands = [Candidate(trees[t].question, trees[t].thinking(n.id), "", separator) for t, n in created]
    for (_, node), scored in zip(created, verifier.score(cands) if cands else [], strict=True):
        node.score = scored.scores[-1] if scored.scores else None
        node.error = scored.error


def _answer(backend: HFBackend, trees: list[Tree], config: RebaseConfig, sampling: SamplingSettings,
            answer_sampling: SamplingSettings | None) -> None:
    """Answer every leaf: force the closer (natural end) or the cap (depth / token cap), then let the
    backend generate the answer."""
    branches: list[Branch] = []
    owners: list[tuple[Tree, Node]] = []
    for tree in trees:
        for leaf in tree.leaves:
            ids = list(encode(backend.tokenizer, tree.thinking(leaf.id)))
            budget = len(ids) if leaf.capped else len(ids) + 1
            policy = BudgetPolicy(max_thinking_tokens=budget, max_answer_tokens=config.max_answer_tokens,
                                  thinking=sampling, answer=answer_sampling)
            machine = ForcingMachine.for_policy(policy, backend.forcing_tokens(policy), budget)
            emitted = [machine.feed(t) for t in ids]
            if machine.thinking_tokens != len(ids):
                raise RuntimeError(f"{tree.request.id}: a leaf's thinking re-encodes to an end-of-thinking token")
            emitted += machine.take_forced() if leaf.capped else machine.end_thinking()
            request = replace(tree.request, sample_index=_stream(tree.request, leaf.id) % (1 << 31), policy=None)
            branches.append(Branch(request, policy, emitted, machine))
            owners.append((tree, leaf))
    if not branches:
        return
    for (tree, leaf), gen in zip(owners, backend.continue_answers(branches), strict=True):
        tree.answers[leaf.id] = replace(gen, sample_index=tree.request.sample_index)


def select_leaf(tree: Tree, canonical: dict[int, Any], how: str, aggregation: str) -> int | None:
    """The chosen leaf's node id: `weighted` majority over the leaves' canonical answers (weights:
    aggregated path scores; the best-weighted leaf of the winning answer represents it) or the `best`
    leaf. Leaves without an answer (None) never win; None when no leaf has one."""
    if how not in SELECTIONS:
        raise ValueError(f"select must be one of {', '.join(SELECTIONS)}, got {how!r}")
    leaves = [n for n in tree.leaves if n.id in tree.answers]
    weights = {n.id: tree.leaf_weight(n, aggregation) for n in leaves}
    answered = [n for n in leaves if canonical.get(n.id) is not None]
    if not answered:
        return None
    if how == "best":
        return max(answered, key=lambda n: weights[n.id]).id  # max keeps the first of equal weights
    totals: dict[Any, float] = {}
    for n in answered:
        totals[canonical[n.id]] = totals.get(canonical[n.id], 0.0) + weights[n.id]
    winner = max(totals, key=totals.__getitem__)
    return max((n for n in answered if canonical[n.id] == winner), key=lambda n: weights[n.id]).id


def run(work: MethodWork, config: CompareConfig, backend: Backend, verifiers: Sequence[Verifier]) -> None:
    """One tree per question and width, scored by the first verifier; the chosen leaf's record is stored
    with the whole tree's cost and leaves in `meta`."""
    if not verifiers:
        raise ValueError("verifiers: rebase needs a verifier to score its nodes")
    if not isinstance(backend, HFBackend):
        raise ValueError("REBASE samples one step at a time on a transformers model: use the hf backend")
    verifier = verifiers[0]
    for width in config.rebase_widths:
        label = f"rebase:W={width}"
        rc = config.rebase_config(width)
        for chunk in work.chunks(work.pending.get(label, [])):  # all trees of a chunk grow together
            requests = [replace(request_for(item, config.system), setting=label) for _, item in chunk]
            trees = rebase_search(backend, requests, [item.question for _, item in chunk], verifier, rc,
                                  config.sampling())
            work.emit([tree_record(config, task, item, tree, rc, verifier.name)
                       for (task, item), tree in zip(chunk, trees, strict=True)])


def tree_record(config: CompareConfig, task: str, item: TaskItem, tree: Tree, rc: RebaseConfig,
                verifier: str) -> SampleRecord:
    """The chosen leaf's generation, graded, with the whole tree's cost and leaves in `meta`."""
    leaves = [n for n in tree.leaves if n.id in tree.answers]
    gens = [tree.answers[n.id] for n in leaves]
    graded = grade_records(task, item, gens, config.grader_timeout)
    ok = [(n, r) for n, r in zip(leaves, graded, strict=True) if r.generation.error is None]
    canon = canonical_answers(item.grader, [r.generation.answer for _, r in ok], [r.extracted for _, r in ok],
                              item.metadata, config.grader_timeout)
    canonical = {n.id: c for (n, _), c in zip(ok, canon, strict=True)}
    chosen = select_leaf(tree, canonical, rc.select, rc.aggregate)
    by_id = {n.id: r for n, r in zip(leaves, graded, strict=True)}
    label = f"rebase:W={rc.width}"
    if chosen is None:  # no leaf produced an answer: keep the first leaf's record, graded as it is
        record = graded[0] if graded else SampleRecord(task, Generation.failed(
            tree.request.id, "the search produced no leaf", setting=label), False, None,
            "the search produced no leaf", item.gold)
    else:
        record = by_id[chosen]
    return replace(record, generation=replace(record.generation, setting=label, sample_index=0, meta={
        "method": "rebase", "width": rc.width, "verifier": verifier, "select": rc.select,
        "aggregate": rc.aggregate, "generated_tokens": tree.generated_tokens,
        "thinking_tokens": tree.thinking_tokens, "nodes": len(tree.nodes), "widths": tree.widths(),
        "chosen": chosen, "score_errors": sorted({n.error for n in tree.nodes if n.error}),
        "leaves": [{"node": n.id, "depth": n.depth, "capped": n.capped, "weight": tree.leaf_weight(n, rc.aggregate),
                    "canonical": canonical.get(n.id), "correct": bool(by_id[n.id].correct)} for n in leaves],
    }))
