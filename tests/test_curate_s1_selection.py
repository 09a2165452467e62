"""s1K's selection on a synthetic featurized pool, against s1's algorithm (data/filter.ipynb) written out
here as a reference: drop rows with any None feature, the formatting filter, drop what a Qwen model
solved, seeds (teacher-correct GPQA / AIME, MATH longer than 5,600 tokens) among what is left, then
draws with NumPy's global generator: uniform domains until 700 (here `uniform_until`), then domains
weighted by GPQA (halved) + AIME, an item by 2^-rank of its trace length. The reference seeds NumPy's
global generator and sorts its domain list (the notebook takes `list(set(...))`, whose order is
arbitrary); otherwise it is the notebook's code path."""

from __future__ import annotations

import random
import re
from collections import Counter

import numpy as np
import pytest

from s1.curate.select import S1_BENCHMARKS, SelectConfig, diversity_sample, select

TEACHER, WEAK = "gemini", ("qwen7b", "qwen32b")
GPQA, AIME, MATH = "Idavidrein/gpqa", "qq8933/AIME_1983_2024", "simplescaling/openaimath/Algebra"


# ---------------------------------------------------------------------------------------------- reference


def reference_selection(pool: list[dict], feats: dict[str, dict], traces: dict, n: int, uniform_until: int,
                        seed: int) -> set[str]:
    """filter.ipynb's cells on plain dicts (features under the notebook's names)."""
    nb = {}  # featurized_dict: qhash -> the notebook's feature columns, in pool order
    for it in pool:
        f = feats.get(it["id"])
        if f is None:
            continue
        nb[it["id"]] = {"domain": f["domain"], "gemini_length": f["trace_tokens"],
                        "isgeminicorrect": f["correct"].get(TEACHER),
                        "isqwen7bcorrect": f["correct"].get("qwen7b"), "isqwen32bcorrect": f["correct"].get("qwen32b")}
    geminiall = [it for it in pool if it["id"] in traces]
    # Drop NAs
    geminiall = [x for x in geminiall if x["id"] in nb and all(v is not None for v in nb[x["id"]].values())]
    # Drop weird string patterns
    kept = []
    for example in geminiall:
        question = example["question"]
        if ("[asy]" not in question and "![Image]" not in question  # noqa: SIM114 - the notebook's branches
                and not any(f"p{i}." in question for i in range(1, 1000))
                and not re.search(r"\*\*(?=.*\d)[^\s\]]*\*\*", question)):
            kept.append(example)
        elif "[asy]" in question and "AIME" in example["source_type"]:
            kept.append(example)
    # Drop Qwen correct
    geminiall = [x for x in kept if not (nb[x["id"]]["isqwen32bcorrect"] or nb[x["id"]]["isqwen7bcorrect"])]
    hashes = {x["id"] for x in geminiall}
    featurized = {k: v for k, v in nb.items() if k in hashes}
    # Selected benchmark related data
    selected = set()
    for example in geminiall:
        f = featurized[example["id"]]
        if f["isgeminicorrect"]:
            if example["source_type"] in [GPQA, AIME]:  # noqa: SIM114 - the notebook's branches
                selected.add(example["id"])
            elif "openaimath" in example["source_type"] and f["gemini_length"] > 5600:
                selected.add(example["id"])
    # Diversity sampling
    gpqa_domain = Counter(featurized[x["id"]]["domain"] for x in geminiall if x["source_type"] == GPQA)
    aime_domain = Counter(featurized[x["id"]]["domain"] for x in geminiall if x["source_type"] == AIME)
    enlarge_ratio = 0.5 * sum(aime_domain.values()) / sum(gpqa_domain.values())
    for domain in gpqa_domain:
        gpqa_domain[domain] = int(gpqa_domain[domain] * enlarge_ratio)
    benchmark_domain = gpqa_domain + aime_domain
    benchmark_domains, benchmark_weights = list(benchmark_domain.keys()), list(benchmark_domain.values())
    benchmark_weights = np.array(benchmark_weights) / sum(benchmark_weights)
    all_domains = sorted({featurized[x["id"]]["domain"] for x in geminiall})
    by_domain = {d: {k: v for k, v in featurized.items() if v["domain"] == d} for d in all_domains}
    np.random.seed(seed)
    while len(selected) < n:
        if len(selected) < uniform_until:
            domain = np.random.choice(all_domains, size=1)[0]
        else:
            domain = np.random.choice(benchmark_domains, size=1, p=benchmark_weights)[0]
        examples = by_domain[domain]
        qhashes = list(examples.keys())
        lengths = np.array([int(examples[q]["gemini_length"]) for q in qhashes])
        ranks = len(lengths) - 1 - np.argsort(np.argsort(lengths))
        weights = np.power(2.0, -ranks)
        weights = weights / weights.sum()
        chosen = np.random.choice(qhashes, p=weights)
        selected.add(chosen)
        by_domain[domain].pop(chosen)
        if len(by_domain[domain]) == 0:
            if domain in all_domains:
                all_domains.remove(domain)
            if domain in benchmark_domains:
                benchmark_weights = np.delete(benchmark_weights, benchmark_domains.index(domain))
                benchmark_weights = benchmark_weights / benchmark_weights.sum()
                benchmark_domains.remove(domain)
    return {str(q) for q in selected}


# ---------------------------------------------------------------------------------------------- pool


def featurized_pool(seed: int = 0, size: int = 700) -> tuple[list[dict], dict[str, dict], dict[str, dict]]:
    """Items from GPQA, AIME, MATH and others over 14 domains of very different sizes (a few exhaust),
    with missing features, ungraded attempts, formatting failures and weak-model solves sprinkled in."""
    rng = random.Random(seed)
    domains = [f"d{k:02d}" for k in range(14)]
    sizes = [3, 4, 5, 8, 12, 20, 30, 40, 60, 80, 90, 100, 120, 128]
    pool, feats, traces = [], {}, {}
    sources = [GPQA, AIME, MATH, "GAIR/OlympicArena/Physics", "KbsdJames/Omni-MATH"]
    for domain, count in zip(domains, sizes, strict=True):
        for k in range(count):
            item_id = f"{domain}-{k:03d}"
            source = sources[rng.randrange(len(sources))] if domain not in ("d00", "d01") else "src/small"
            question = f"Question {item_id}: find the value."
            roll = rng.random()
            if roll < 0.02:
                question += " [asy] draw. [/asy]"
            elif roll < 0.03:
                question += " See ![Image] here."
            elif roll < 0.04:
                question = "p3. " + question
            pool.append({"id": item_id, "question": question, "source_type": source})
            correct = {TEACHER: rng.random() < 0.6, "qwen7b": rng.random() < 0.15, "qwen32b": rng.random() < 0.2}
            if rng.random() < 0.03:
                correct[rng.choice([TEACHER, *WEAK])] = None  # ungraded: s1 drops the row
            feats[item_id] = {"id": item_id, "domain": domain if rng.random() > 0.02 else None,
                              "trace_tokens": rng.choice([rng.randrange(200, 5600), rng.randrange(5500, 12000)]),
                              "correct": correct}
            if rng.random() > 0.02:
                traces[item_id] = {"thinking": "t", "attempt": "a", "error": None}
    return pool, feats, traces


def cfg(n: int, uniform_until: int) -> SelectConfig:
    return SelectConfig(n=n, weak_models=WEAK, uniform_until=uniform_until)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_selection_is_s1s_algorithm(seed):
    pool, feats, traces = featurized_pool()
    picked, steps = select(pool, feats, traces, cfg(250, 150), seed, TEACHER)
    assert {it["id"] for it, _ in picked} == reference_selection(pool, feats, traces, 250, 150, seed)
    assert len(picked) == 250 and steps["diversity"]["draws"]["benchmark"] > 0


def test_same_seed_same_selection_and_order_other_seed_different():
    pool, feats, traces = featurized_pool()
    runs = [[(it["id"], how) for it, how in select(pool, feats, traces, cfg(250, 150), s, TEACHER)[0]]
            for s in (3, 3, 4)]
    assert runs[0] == runs[1] and runs[0] != runs[2]
    ids = [i for i, _ in runs[0]]
    assert ids == [it["id"] for it in pool if it["id"] in set(ids)]  # written in pool order, as s1 filters


def test_missing_and_ungraded_features_drop_the_item():
    pool, feats, traces = featurized_pool()
    picked, steps = select(pool, feats, traces, cfg(250, 150), 0, TEACHER)
    dropped = steps["quality"]["dropped"]
    ungraded = [i for i, f in feats.items() if None in f["correct"].values() and i in traces and f["domain"]]
    assert ungraded and sum(v for k, v in dropped.items() if k.startswith("ungraded")) == len(ungraded)
    assert dropped["missing teacher trace"] == sum(it["id"] not in traces for it in pool)
    assert not {it["id"] for it, _ in picked} & set(ungraded)
    lenient = SelectConfig(n=250, weak_models=WEAK, uniform_until=150, require_complete=False)
    _, steps = select(pool, feats, traces, lenient, 0, TEACHER)
    assert not any(k.startswith("ungraded") for k in steps["quality"]["dropped"])


def test_seeds_come_after_the_difficulty_filter_and_need_more_than_5600_tokens():
    pool = [{"id": f"m{k}", "question": f"Math question {k}?", "source_type": MATH} for k in range(4)]
    pool += [{"id": "g", "question": "GPQA question?", "source_type": GPQA},
             {"id": "other", "question": "Other question?", "source_type": "KbsdJames/Omni-MATH"}]
    feats = {
        "m0": (6000, {TEACHER: True, "qwen7b": False, "qwen32b": False}),  # seed
        "m1": (5600, {TEACHER: True, "qwen7b": False, "qwen32b": False}),  # not longer than 5,600
        "m2": (9000, {TEACHER: True, "qwen7b": True, "qwen32b": False}),  # solved by a weak model: dropped first
        "m3": (9000, {TEACHER: False, "qwen7b": False, "qwen32b": False}),  # teacher wrong
        "g": (100, {TEACHER: True, "qwen7b": False, "qwen32b": False}),  # seed, whatever its length
        "other": (99999, {TEACHER: True, "qwen7b": False, "qwen32b": False}),
    }
    feats = {k: {"id": k, "domain": "d", "trace_tokens": t, "correct": c} for k, (t, c) in feats.items()}
    traces = {k: {"thinking": "t", "attempt": "a", "error": None} for k in feats}
    picked, steps = select(pool, feats, traces, cfg(2, 700), 0, TEACHER)
    assert [(it["id"], how) for it, how in picked] == [("m0", "seed"), ("g", "seed")]
    assert steps["difficulty"]["dropped"] == {"solved by qwen7b": 1} and steps["seeds"]["selected"] == 2


def test_draws_are_uniform_until_the_threshold_then_follow_the_benchmarks():
    # 6 domains of 100 items; GPQA items only in d0, AIME only in d1: after the threshold only those
    pool, feats = [], {}
    for d in range(6):
        for k in range(100):
            item_id = f"d{d}-{k:02d}"
            source = GPQA if d == 0 and k < 10 else AIME if d == 1 and k < 20 else "src/other"
            pool.append({"id": item_id, "question": item_id, "source_type": source})
            feats[item_id] = {"id": item_id, "domain": f"d{d}", "trace_tokens": k, "correct": {}}
    chosen: dict[str, str] = {}
    draws = diversity_sample(pool, feats, chosen, 200, 120, S1_BENCHMARKS, np.random.RandomState(0))
    order = [feats[i]["domain"] for i in chosen]
    assert draws == {"uniform": 120, "benchmark": 80}
    assert set(order[:120]) == {f"d{d}" for d in range(6)}  # every domain while uniform
    assert set(order[120:]) == {"d0", "d1"}  # GPQA's and AIME's domains afterwards
    # weights: GPQA's 10 scaled to half of AIME's 20 -> d0: int(10 * 0.5 * 20 / 10) = 10, d1: 20
    later = Counter(order[120:])
    assert later["d1"] > later["d0"]
    ranks = [feats[i]["trace_tokens"] for i in list(chosen)[:120] if feats[i]["domain"] == "d2"]
    assert np.mean(ranks) > 80  # long traces first: rank 0 is the longest (k = 99)
