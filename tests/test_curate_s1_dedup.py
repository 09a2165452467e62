"""Decontamination as s1's collect_data.py runs it: sources in order, each checked against the evaluation
sets and every item kept from the sources before it (cross-source 8-gram dedup), then shuffled and
capped as s1 does (datasets' shuffle(seed=42), first N + keep list; SciEval's quota sampler, checked
against s1's select_examples_scieval run on a real `datasets.Dataset`), AIME appended afterwards."""

from __future__ import annotations

import json
import math

import pytest

from s1.curate.decontaminate import DecontamConfig, GroupPlan, decontaminate
from s1.curate.io import question_hash
from s1.curate.ngrams import NgramIndex
from s1.curate.sources import QuestionList
from s1.curate.subsample import Sample, s1_order, subsample

NO_EVAL = DecontamConfig(eval_sets=(), keep_questions=None)


def item(text: str, source: str, group: str | None = None, **meta) -> dict:
    return {"id": question_hash(text), "question": text, "source_type": source, "source": source,
            "group": group or source, "metadata": meta}


def test_a_near_duplicate_in_a_later_source_is_removed_and_distinct_items_stay():
    a = [item("Triangle ABC has sides AB = 13, BC = 14 and CA = 15. Find the radius of its incircle.", "A"),
         item("How many positive divisors does the number 2024 have in total?", "A")]
    b = [item("Warm-up:  triangle abc has SIDES ab = 13, bc = 14 and ca = 15; what is the area?", "B"),
         item("How many primes are there between 100 and 200 inclusive of both ends?", "B"),
         item("Find the number of ordered pairs of integers x and y with x squared plus y squared = 25.", "B")]
    later_a = [item("Triangle ABC has sides AB = 13, BC = 14 and CA = 15. Find its circumradius.", "A2")]
    kept, removed, per_group = decontaminate(a + b + later_a, NgramIndex(8), NO_EVAL)
    assert [r["reason"] for r in removed] == ["near-duplicate", "near-duplicate"]
    assert removed[0]["id"] == b[0]["id"] and removed[0]["duplicate_of"] == a[0]["id"]
    assert removed[0]["duplicate_source"] == "A" and removed[0]["ngram"] == "triangle abc has sides ab = 13, bc"
    assert removed[1]["id"] == later_a[0]["id"]  # checked against A and B's kept items
    assert {x["id"] for x in kept} == {a[0]["id"], a[1]["id"], b[1]["id"], b[2]["id"]}
    assert per_group["B"] == {"input": 3, "near-duplicate": 1, "sampled_out": 0, "kept": 2}
    # without cross-source dedup (or within one source) nothing is removed: s1 checks earlier sources only
    kept, removed, _ = decontaminate(a + b, NgramIndex(8), DecontamConfig(eval_sets=(), keep_questions=None,
                                                                          cross_source=False))
    assert len(kept) == 5 and not removed
    same_source = [item(x["question"], "A") for x in a + b]
    assert len(decontaminate(same_source, NgramIndex(8), NO_EVAL)[0]) == 5


def test_only_kept_items_of_earlier_sources_count_and_eval_sets_come_first():
    index = NgramIndex(8)
    index.add("bench", "e1", "the quick brown fox jumps over the lazy dog near the river bank")
    a = [item(f"Source A question number {k}: the quick brown fox jumps over the lazy dog today", "A")
         for k in range(3)]
    a += [item(f"Plain question {k} apples {k} in basket {k} of fruit {k} at home {k}", "A") for k in range(6)]
    b = [item(f"Another: plain question {k} apples {k} in basket {k} of fruit {k} at home {k}", "B")
         for k in range(6)]
    plans = {"A": GroupPlan(limit=2)}  # A keeps 2 of its 6 clean items: B's copies of the others stay
    kept, removed, per_group = decontaminate(a + b, index, DecontamConfig(eval_sets=(), keep_questions=None), plans)
    assert [r["eval_set"] for r in removed if r["reason"] == "contaminated"] == ["bench"] * 3
    kept_a = [x for x in kept if x["source"] == "A"]
    assert len(kept_a) == 2 and per_group["A"]["sampled_out"] == 4
    kept_numbers = {x["question"].split()[2] for x in kept_a}
    near = [r for r in removed if r["reason"] == "near-duplicate"]
    assert {r["question"].split()[3] for r in near} == kept_numbers  # only copies of what A kept
    assert len([x for x in kept if x["source"] == "B"]) == 4


def test_groups_not_decontaminated_are_appended_as_they_are_and_exact_dedup_is_last():
    math_item = item("Find the remainder when 2 to the power 100 is divided by 7 in this problem.", "MATH")
    aime = [item("Find the remainder when 2 to the power 100 is divided by 7 in this problem.", "AIME"),
            item("AIME problem that shares eight words: remainder when 2 to the power 100 is divided.", "AIME")]
    kept, removed, per_group = decontaminate([*aime, math_item], NgramIndex(8), NO_EVAL,
                                             {"AIME": GroupPlan(decontaminate=False)})
    assert [x["source"] for x in kept] == ["MATH", "AIME"]  # AIME after the loop (s1's add_aime.py)
    assert [r["reason"] for r in removed] == ["duplicate"] and removed[0]["duplicate_source"] == "MATH"
    assert per_group["AIME"] == {"input": 2, "appended_after_decontamination": 2}


def test_a_capped_source_is_s1s_datasets_shuffle_then_first_n_plus_the_keep_list():
    import datasets

    items = [item(f"Crossword clue number {k} (5)", "xword") for k in range(40)]
    keep = frozenset({items[3]["question"], items[30]["question"]})
    got = subsample(items, 10, Sample(), keep, 42)
    ds = datasets.Dataset.from_list([{"question": x["question"]} for x in items]).shuffle(seed=42)
    kept_rows = ds.filter(lambda x: x["question"] in keep)
    expected = list(ds.select(range(10 - len(kept_rows)))["question"]) + list(kept_rows["question"])
    assert [x["question"] for x in got] == expected  # collect_data.py's shuffle, select and concatenate
    assert [x["question"] for x in s1_order(items, 42)] == list(ds["question"])
    assert subsample(items, None, Sample(), keep, None) == items


def scieval_reference(ds, n_examples: int, keep: list[str]):
    """s1's select_examples_scieval (collect_data.py) as written, on a `datasets.Dataset` whose metadata
    is `str(dict)`; returns the selected questions in order."""
    import ast

    import datasets

    samples_to_keep = ds.filter(lambda x: x["question"] in keep)
    n_examples -= len(samples_to_keep)
    tasks = {ast.literal_eval(x)["task_name"] for x in ds["metadata"]}
    tasks_to_num_samples = {task: math.ceil(n_examples / len(tasks)) for task in tasks}
    topics = {ast.literal_eval(x)["topic"] for x in ds["metadata"]}
    socratic_qa_samples = tasks_to_num_samples["SocraticQA"]
    topics_to_num_samples = {topic: math.ceil(socratic_qa_samples / len(topics)) for topic in topics}
    selected_examples = []
    ds = ds.shuffle(seed=42)
    for ex in ds:
        meta = ast.literal_eval(ex["metadata"])
        if meta["topic"] in topics and topics_to_num_samples[meta["topic"]] > 0:
            selected_examples.append(ex)
            topics_to_num_samples[meta["topic"]] -= 1
            tasks_to_num_samples["SocraticQA"] -= 1
        if (meta["task_name"] in tasks) and (tasks_to_num_samples[meta["task_name"]] > 0):
            selected_examples.append(ex)
            tasks_to_num_samples[meta["task_name"]] -= 1
        if len(selected_examples) == n_examples:
            break
    out = datasets.concatenate_datasets([datasets.Dataset.from_list(selected_examples), samples_to_keep])
    return list(out["question"])


@pytest.mark.parametrize("limit", [25, 40])
def test_scieval_quota_sampler_is_s1s(limit, tmp_path):
    import datasets

    tasks = ["SocraticQA"] * 5 + ["MedQA", "PubMedQA", "reagent selection"]
    topics = ["physics", "chemistry", "biology", None]
    items = []
    for k in range(160):
        task = tasks[k % len(tasks)]
        topic = topics[k % 3] if task == "SocraticQA" else topics[3]
        items.append(item(f"SciEval question {k}?", "SciEval", task_name=task, topic=topic))
    keep = [items[5]["question"], items[77]["question"]]
    ds = datasets.Dataset.from_list([{"question": x["question"], "metadata": str(x["metadata"])} for x in items])
    expected = scieval_reference(ds, limit, keep)
    sample = Sample(method="quota", by="task_name", sub_by="topic", sub_of="SocraticQA")
    got = subsample(items, limit, sample, frozenset(keep), 42)
    assert [x["question"] for x in got] == expected
    assert len(set(expected)) < len(expected) == limit  # s1 takes some items twice: fewer distinct ones
    (tmp_path / "keep.json").write_text(json.dumps(keep))
    config = DecontamConfig(eval_sets=(), keep_questions=QuestionList(questions=str(tmp_path / "keep.json")))
    kept, _, _ = decontaminate(items, NgramIndex(8), config, {"SciEval": GroupPlan(limit=limit, sample=sample)})
    assert [x["question"] for x in kept] == list(dict.fromkeys(expected))  # the repeats collapse to one


def test_the_index_grows_with_the_text_16_bytes_a_gram():
    index = NgramIndex(8)
    index.add_many("a", [(str(k), " ".join(f"w{k}_{j}" for j in range(20))) for k in range(100)])
    assert len(index) == 100 * 13 and index.nbytes == 16 * len(index)
    assert index.find("x w5_3 w5_4 w5_5 w5_6 w5_7 w5_8 w5_9 w5_10 y").item_id == "5"
