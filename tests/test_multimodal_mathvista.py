"""MathVista with images: the shared testmini questions plus images the test draws, the S1-M num_ignore
0..7 sweep through `evaluate`, per-category accuracy and cap / unclosed shares in the report, and the
rule-based grading of every answer type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from test_multimodal import load_tiny_vl, save_tiny_vl
from typer.testing import CliRunner

from s1.backends.hf.backend import HFBackend
from s1.cli import app
from s1.eval.report import category_summaries, summarize
from s1.eval.run import EvalConfig, evaluate, load_items
from s1.eval.store import RunStore
from s1.grading import grade
from s1.tasks import get_task
from s1.tasks.mathvista_images import item_categories, item_images

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mathvista_testmini.json"
PIDS = ["1", "2", "3", "4", "5"]


@pytest.fixture(scope="module")
def mathvista_dir(tmp_path_factory) -> Path:
    """`testmini.json` (the shared questions) + `images/` (drawn here: the image archive is not shared).
    Item 5's image is left out on purpose."""
    root = tmp_path_factory.mktemp("mathvista")
    rows = json.loads(SHARED.read_text(encoding="utf-8"))
    (root / "testmini.json").write_text(json.dumps({p: rows[p] for p in PIDS}), encoding="utf-8")
    (root / "images").mkdir()
    for n, pid in enumerate(PIDS[:-1]):
        Image.new("RGB", (56 + 28 * (n % 2), 56), (40 * n, 200 - 40 * n, 90)).save(root / rows[pid]["image"])
    return root


def test_local_directory_loader_gives_prompts_images_and_categories(mathvista_dir):
    items = get_task("mathvista").load(mathvista_dir)
    assert [it.id for it in items] == PIDS
    first = items[0]
    assert first.question.startswith("Hint: Please answer the question requiring a floating-point number with one")
    assert "Question: When a spring does work" in first.question  # MathVista's query, built from the row
    (path,) = item_images(first)
    assert Path(path) == mathvista_dir / "images" / "1.jpg" and Path(path).is_file()
    assert item_categories(first) == {"question_type": ["free_form"], "answer_type": ["float"],
                                      "skills": ["scientific reasoning"]}
    choice = next(it for it in items if it.metadata["question_type"] == "multi_choice")
    assert "Choices:\n(A)" in choice.question


def test_s1m_sweep_over_mathvista_with_images(mathvista_dir, tmp_path):
    model, processor = load_tiny_vl(save_tiny_vl(tmp_path / "model", eos_boost=2.0))
    backend = HFBackend(model, processor, format="s1m")
    config = EvalConfig(model="tiny-vl", tasks=("mathvista",), data_dir=str(mathvista_dir), budgets=(48,),
                        num_ignore=tuple(range(8)), max_answer_tokens=6, format="s1m")
    items = load_items(config)
    store = RunStore.open_or_create(tmp_path / "run", {"model": "tiny-vl", "backend": "hf"}, resume=False)
    progress = evaluate(config, backend, store, items)
    records = list(store.records())
    store.close()
    assert progress.total == len(records) == 5 * 8
    failed = [r for r in records if r.generation.error is not None]
    assert {r.generation.prompt_id for r in failed} == {"5"}  # the missing image: recorded, never dropped
    assert "5.jpg" in failed[0].generation.error
    ok = [r for r in records if r.generation.error is None]
    assert all(r.generation.meta["image_tokens"] > 0 and r.generation.meta["categories"] for r in ok)
    assert {r.generation.ignores_applied for r in ok} >= {0, 1, 2}  # the sweep really extends thinking

    rows = summarize(records)
    assert [r.num_ignore for r in rows] == list(range(8)) and all(r.errors == 1 for r in rows)
    cats = category_summaries(records)
    skills = {c.category for c in cats if c.field == "skills"}
    assert "scientific reasoning" in skills and {c.field for c in cats} == {"question_type", "answer_type", "skills"}
    assert all(c.samples >= 1 for c in cats)

    res = CliRunner().invoke(app, ["report", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert "accuracy per category" in res.output and "scientific reasoning" in res.output
    assert "cap hit" in res.output and "unclosed" in res.output


# hand-written cases: (answer text, gold, metadata, correct?)
MC = {"question_type": "multi_choice", "answer_type": "text", "choices": ["3", "4", "5", "6"]}
INT = {"question_type": "free_form", "answer_type": "integer"}
FLOAT = {"question_type": "free_form", "answer_type": "float", "precision": 2}
LIST = {"question_type": "free_form", "answer_type": "list"}
CASES = [
    ("Final answer: B", "4", MC, True),
    ("Final answer: (C) 5", "5", MC, True),
    ("So the answer is \\boxed{6}", "6", MC, True),
    ("Final answer: ", "4", MC, False),  # empty: no nearest-option guess
    ("Final answer: purple elephant", "4", MC, False),  # garbage names no option
    ("Final answer: 12", "12", INT, True),
    ("Final answer: 12.0 cm", "12", INT, True),
    ("Final answer: eleven", "12", INT, False),
    ("", "12", INT, False),
    ("Final answer: 3.14159", "3.14", FLOAT, True),
    ("Final answer: \\boxed{0.5}", "0.50", FLOAT, True),
    ("Final answer: 3.2", "3.14", FLOAT, False),
    ("Final answer: [1, 2, 3]", "[1, 2, 3]", LIST, True),
    ("Final answer: [1, 3, 2]", "[1, 2, 3]", LIST, False),
    ("Final answer: a list of numbers", "[1, 2, 3]", LIST, False),
]


@pytest.mark.parametrize(("text", "gold", "meta", "correct"), CASES)
def test_mathvista_rules_grade_every_answer_type(text, gold, meta, correct):
    verdict = grade("mathvista", text, gold, meta)
    assert verdict.correct is correct, verdict.reason
