"""Tests for the benchmark registry (s1.tasks): loading the real shared files and Hub-style exports,
gold answers, GPQA choice shuffling, s1's control sentences, and clear errors on bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from s1.synthetic.benchmark import heldout_items
from s1.synthetic.generation import generate
from s1.tasks import (
    GRADERS,
    TASKS,
    Control,
    HubUnavailableError,
    TaskDataError,
    TaskItem,
    build_prompt,
    get_task,
    load_task,
    mathvista_query,
    task_names,
)
from s1.tasks.loaders import choice_order, gsm8k_gold

SHARED = Path(__file__).parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def data_dir() -> Path:
    if not (SHARED / "aime24.jsonl").is_file():
        pytest.skip(f"shared benchmark data not found at {SHARED} (see ../shared/data/README.md)")
    return SHARED


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


# ---------------------------------------------------------------------------------------------- registry


def test_registry_names_sources_and_graders():
    assert task_names() == ["aime24", "aime24_figures", "aime25", "math500", "gpqa_diamond", "gsm8k",
                            "mathvista", "synthetic"]
    expected = {
        "aime24": ("simplescaling/aime24_nofigures", None, "train", "math"),
        "aime24_figures": ("simplescaling/aime24_figures", None, "train", "math"),
        "aime25": ("simplescaling/aime25_nofigures", None, "train", "math"),
        "math500": ("HuggingFaceH4/MATH-500", None, "test", "math"),
        "gpqa_diamond": ("Idavidrein/gpqa", "gpqa_diamond", "train", "choice"),
        "gsm8k": ("openai/gsm8k", "main", "test", "math"),
        "mathvista": ("AI4Math/MathVista", None, "testmini", "mathvista"),
        "synthetic": (None, None, "heldout", "synthetic"),
    }
    for name, (hub_id, config, split, grader) in expected.items():
        task = get_task(name)
        assert (task.hub_id, task.hub_config, task.hub_split, task.grader) == (hub_id, config, split, grader)
        assert task.grader in GRADERS and task.description
    assert get_task("gpqa_diamond").gated
    assert set(TASKS) == set(expected)


def test_unknown_task_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown task 'aime2024'; known tasks: aime24, .*gpqa_diamond.*synthetic"):
        get_task("aime2024")


# ---------------------------------------------------------------------------------------------- shared data


@pytest.mark.parametrize(("name", "filename", "count"), [
    ("aime24", "aime24.jsonl", 30),
    ("aime25", "aime25.jsonl", 30),
    ("math500", "math500.jsonl", 500),
    ("gsm8k", "gsm8k_test.jsonl", 1319),
    ("mathvista", "mathvista_testmini.json", 1000),
])
def test_shared_files_load_from_dir_and_file(data_dir, name, filename, count):
    from_dir = get_task(name).load(data_dir)
    from_file = get_task(name).load(data_dir / filename)
    assert len(from_dir) == count
    assert from_dir == from_file
    assert len({item.id for item in from_dir}) == count
    assert all(item.grader == get_task(name).grader and item.gold and item.question for item in from_dir)


def test_aime24_gold_strips_zero_padding(data_dir):
    items = {item.id: item for item in load_task("aime24", data_dir)}
    assert items["60"].gold == "204"
    assert items["67"].gold == "25"  # "025" in the file
    assert items["75"].gold == "73"  # "073"
    assert items["78"].gold == "23"  # "023"
    assert items["85"].gold == "80"  # "080"
    assert items["67"].metadata["answer_raw"] == "025"
    assert items["60"].question.startswith("Every morning Aya goes for a $9$-kilometer-long walk")
    assert all(not item.gold.startswith("0") and 0 < int(item.gold) < 1000 for item in items.values())


def test_aime25_int_answers_and_ids(data_dir):
    items = load_task("aime25", data_dir)
    assert [items[0].id, items[0].gold] == ["0", "70"]
    assert [items[29].id, items[29].gold] == ["29", "240"]
    assert items[0].question == "Find the sum of all integer bases $b>9$ for which $17_b$ is a divisor of $97_b.$"


def test_math500_gold_and_metadata(data_dir):
    items = load_task("math500", data_dir)
    first = items[0]
    assert first.id == "test/precalculus/807.json"
    assert first.gold == r"\left( 3, \frac{\pi}{2} \right)"
    assert first.metadata == {"subject": "Precalculus", "level": 2, "unique_id": "test/precalculus/807.json"}
    assert first.question.startswith("Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.")
    assert (items[3].id, items[3].gold) == ("test/number_theory/572.json", "9")
    assert (items[499].id, items[499].gold) == ("test/geometry/615.json", r"106^\circ")


def test_gsm8k_gold_after_hashes_without_commas(data_dir):
    items = load_task("gsm8k", data_dir)
    assert [items[i].gold for i in (0, 1, 2, 1318)] == ["18", "3", "70000", "14"]
    assert [items[i].gold for i in (146, 201, 230)] == ["2125", "114200", "276000"]  # "#### 2,125" ...
    assert items[0].id == "0" and items[1318].id == "1318"
    assert items[0].question.startswith("Janet\u2019s ducks lay 16 eggs per day.")
    assert "####" not in items[0].metadata["solution"] and items[0].metadata["solution"].endswith("market.")


def test_gsm8k_gold_parser():
    assert gsm8k_gold("She pays 2 * 800 = <<2*800=1600>>1600\n#### 1,600") == "1600"
    assert gsm8k_gold("x\n####   -3 ") == "-3"
    with pytest.raises(ValueError, match="no '####'"):
        gsm8k_gold("The answer is 5")


def test_mathvista_items(data_dir):
    items = {item.id: item for item in load_task("mathvista", data_dir)}
    free = items["1"]
    assert free.gold == "1.2" and free.grader == "mathvista"
    assert free.images == ("images/1.jpg",) and free.metadata["image"] == "images/1.jpg"
    assert free.metadata["image_root"] == str(data_dir)
    assert (free.metadata["answer_type"], free.metadata["precision"]) == ("float", 1)
    assert free.question.startswith("Hint: Please answer the question requiring a floating-point number with one "
                                    "decimal place and provide the final value, e.g., 1.2, 1.3, 1.4, at the end.\n"
                                    "Question: When a spring does work")
    assert items["2"].question == ("Hint: Please answer the question requiring an integer answer and provide the "
                                   "final value, e.g., 1, 2, 3, at the end.\n"
                                   "Question: what is the total volume of the measuring cup? (Unit: g)")
    choice = items["3"]
    assert choice.gold == "145°" and choice.metadata["gold_letter"] == "C"
    assert choice.metadata["choices"] == ["135°", "140°", "145°", "150°"]
    assert choice.question.endswith("\nChoices:\n(A) 135°\n(B) 140°\n(C) 145°\n(D) 150°")
    assert choice.metadata["mathvista"]["source"] == "GeoQA+"
    assert sum(i.metadata["question_type"] == "multi_choice" for i in items.values()) == 540
    assert all("gold_letter" in i.metadata for i in items.values() if i.metadata["question_type"] == "multi_choice")


def test_limit_takes_first_items_in_order(data_dir):
    full = load_task("math500", data_dir)
    assert load_task("math500", data_dir, limit=5) == full[:5]
    assert [i.id for i in load_task("mathvista", data_dir, limit=3)] == ["1", "2", "3"]
    assert len(load_task("gsm8k", data_dir, limit=5000)) == 1319


@pytest.mark.parametrize("limit", [0, -1, True, 2.5, "3"])
def test_bad_limit(data_dir, limit):
    with pytest.raises(ValueError, match=r"limit must be an integer >= 1 or None"):
        load_task("aime24", data_dir, limit=limit)


# ---------------------------------------------------------------------------------------------- Hub exports


GPQA_QUESTIONS = [
    ("Two quantum states with energies E1 and E2 have a lifetime of 10^-9 sec and 10^-8 sec.\n"
     "Which energy difference lets them be clearly resolved?", "10^-4 eV", "10^-11 eV", "10^-8 eV", "10^-9 eV"),
    ("trans-cinnamaldehyde was treated with methylmagnesium bromide. How many carbon atoms are in product 3?",
     "11", "10", "12", "14"),
    ("A spin-half particle is in a linear superposition 0.5|up>+sqrt(3)/2|down>. Expectation value of 10sz+5sx?",
     "-0.7", "0.85", "1.65", "-1.4"),
    ("In a parallel universe where a magnet can have an isolated pole, which of Maxwell's equations change?",
     "The ones related to the divergence and the curl of the magnetic field.",
     "The one related to the divergence of the magnetic field.",
     "The one related to the circulation of the electric field and the divergence of the magnetic field.",
     "The ones related to the circulation of the magnetic field and the flux of the electric field."),
    ("Which of the following is the ground state term symbol of Fe(III) high spin?", "6S", "5D", "4F", "2I"),
    ("Calculate the enthalpy of neutralization when acids and bases are mixed.", "-3.80 kcal", "-16.0 kJ",
     "-11.42 kcal", "-2.72 kcal"),
    ("Which star is brighter in the V band?", "Star 1", "Star 2", "Star 3", "Star 4"),
    ("How many stereoisomers are there for the compound?", "16", "8", "32", "4"),
]


def gpqa_rows() -> list[dict]:
    """Rows with the Hub CSV's own columns (a subset of its ~30), extra columns included."""
    return [{
        "Pre-Revision Question": q + " (old)",
        "Question": q,
        "Correct Answer": c,
        "Incorrect Answer 1": i1,
        "Incorrect Answer 2": i2,
        "Incorrect Answer 3": i3,
        "Explanation": "because",
        "Subdomain": "Physics (general)",
        "High-level domain": "Physics",
        "Record ID": f"rec{n:03d}",
    } for n, (q, c, i1, i2, i3) in enumerate(GPQA_QUESTIONS)]


def test_gpqa_hub_csv_and_parquet_exports(tmp_path):
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    write_csv(csv_dir / "gpqa_diamond.csv", gpqa_rows())  # the Hub repo's own file name
    from_csv = load_task("gpqa_diamond", csv_dir, seed=7)
    from_parquet = load_task("gpqa_diamond", write_parquet(tmp_path / "pq" / "train.parquet", gpqa_rows()), seed=7)
    assert from_csv == from_parquet
    assert [item.id for item in from_csv] == [f"rec{n:03d}" for n in range(len(GPQA_QUESTIONS))]
    for item, (question, correct, *wrong) in zip(from_csv, GPQA_QUESTIONS, strict=True):
        choices = item.metadata["choices"]
        assert sorted(choices) == sorted([correct, *wrong])  # all four present, once each
        assert item.gold in "ABCD" and item.grader == "choice"
        assert choices["ABCD".index(item.gold)] == correct  # the gold letter points at the correct answer
        assert item.metadata["correct_letter"] == item.gold and item.metadata["correct_answer"] == correct
        assert item.question == (f"{question}\n\nA) {choices[0]}\nB) {choices[1]}\nC) {choices[2]}\n"
                                 f"D) {choices[3]}")
        assert item.metadata["subdomain"] == "Physics (general)" and item.metadata["domain"] == "Physics"


def test_gpqa_shuffle_deterministic_per_item_and_seed(tmp_path):
    path = write_csv(tmp_path / "gpqa_diamond.csv", gpqa_rows())
    first = load_task("gpqa_diamond", path, seed=0)
    assert load_task("gpqa_diamond", path, seed=0) == first  # same seed, same prompts
    for item, (_, correct, *wrong) in zip(first, GPQA_QUESTIONS, strict=True):
        options = [correct, *wrong]
        assert item.metadata["choices"] == [options[i] for i in choice_order(0, item.id)]
    permutations = {tuple(choice_order(0, item.id)) for item in first}
    assert len(permutations) > 1  # the layout differs across items
    assert len({item.gold for item in first}) > 1  # so the gold letter is not always the same
    other = load_task("gpqa_diamond", path, seed=1)
    assert [i.metadata["choices"] for i in other] != [i.metadata["choices"] for i in first]
    # independent of row order: the same record gets the same choices wherever it sits
    reversed_path = write_csv(tmp_path / "reversed.csv", gpqa_rows()[::-1])
    by_id = {item.id: item for item in load_task("gpqa_diamond", reversed_path, seed=0)}
    assert all(by_id[item.id] == item for item in first)


def test_gpqa_without_record_id_uses_row_index(tmp_path):
    rows = [{k: v for k, v in row.items() if k != "Record ID"} for row in gpqa_rows()[:2]]
    items = load_task("gpqa_diamond", write_jsonl(tmp_path / "gpqa_diamond.jsonl", rows))
    assert [item.id for item in items] == ["0", "1"]


def test_math500_hub_parquet_and_shards(tmp_path):
    rows = [
        {"problem": "What is $1+1$?", "solution": "$\\boxed{2}$", "answer": "2", "subject": "Prealgebra",
         "level": 1, "unique_id": "test/prealgebra/1.json"},
        {"problem": "Simplify $\\frac{4}{6}$.", "solution": "...", "answer": "\\frac{2}{3}", "subject": "Algebra",
         "level": 2, "unique_id": "test/algebra/2.json"},
    ]
    write_parquet(tmp_path / "hub" / "test.parquet", rows)  # the Hub split file name
    items = load_task("math500", tmp_path / "hub")
    assert [(i.id, i.gold, i.metadata["subject"], i.metadata["level"]) for i in items] == [
        ("test/prealgebra/1.json", "2", "Prealgebra", 1), ("test/algebra/2.json", "\\frac{2}{3}", "Algebra", 2)]
    write_parquet(tmp_path / "shards" / "data" / "test-00000-of-00002.parquet", rows[:1])
    write_parquet(tmp_path / "shards" / "data" / "test-00001-of-00002.parquet", rows[1:])
    assert load_task("math500", tmp_path / "shards") == items


def test_gsm8k_hub_layout(tmp_path):
    rows = [{"question": "Tom has 1,000 apples and buys 600 more. How many?", "answer": "1000+600=1600\n#### 1,600"},
            {"question": "2+2?", "answer": "#### 4"}]
    write_parquet(tmp_path / "main" / "test-00000-of-00001.parquet", rows)  # openai/gsm8k's layout
    items = load_task("gsm8k", tmp_path)
    assert [(i.id, i.gold) for i in items] == [("0", "1600"), ("1", "4")]


def test_aime_hub_columns(tmp_path):
    rows = [{"id": 60, "problem": "Find x.", "solution": "x = 25", "answer": "025",
             "url": "https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_1"}]
    items = load_task("aime24", write_parquet(tmp_path / "train.parquet", rows))
    assert [(i.id, i.gold, i.question) for i in items] == [("60", "25", "Find x.")]
    assert items[0].metadata["url"].endswith("Problem_1")
    # an aime25 variant: `question` instead of `problem`, int answers, no id (row index)
    items = load_task("aime25", write_jsonl(tmp_path / "aime_2025.jsonl", [{"question": "Q?", "answer": 7}]))
    assert [(i.id, i.gold, i.question) for i in items] == [("0", "7", "Q?")]


def mathvista_hub_row(pid: str, **over) -> dict:
    row = {
        "pid": pid, "question": "Which angle is largest?", "image": f"images/{pid}.jpg",
        "decoded_image": {"bytes": b"\x89PNG fake", "path": None},
        "choices": ["30°", "60°", "90°"], "unit": None, "precision": None, "answer": "90°",
        "question_type": "multi_choice", "answer_type": "text",
        "metadata": {"source": "Geometry3K", "split": "testmini"},
        "query": "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the "
                 "end.\nQuestion: Which angle is largest?\nChoices:\n(A) 30°\n(B) 60°\n(C) 90°",
    }
    row.update(over)
    return row


def test_mathvista_hub_parquet_skips_image_bytes(tmp_path):
    path = write_parquet(tmp_path / "testmini-00000-of-00001.parquet", [mathvista_hub_row("7")])
    (item,) = load_task("mathvista", path)
    assert item.id == "7" and item.gold == "90°" and item.metadata["gold_letter"] == "C"
    assert item.question == mathvista_hub_row("7")["query"]
    assert item.images == ("images/7.jpg",)
    assert "decoded_image" not in json.dumps(item.to_dict())


def test_mathvista_query_rebuilt_when_absent():
    """The query built from fields equals the Hub's `query` column for the same row."""
    row = mathvista_hub_row("7")
    assert mathvista_query(row["question"], question_type="multi_choice", answer_type="text",
                           choices=row["choices"]) == row["query"]
    assert mathvista_query("How long?", question_type="free_form", answer_type="float", precision=2.0,
                           unit="cm") == ("Hint: Please answer the question requiring a floating-point number with "
                                          "two decimal places and provide the final value, e.g., 1.23, 1.34, 1.45, "
                                          "at the end.\nQuestion: How long? (Unit: cm)")


# ---------------------------------------------------------------------------------------------- synthetic


def test_synthetic_task_generated_and_from_file(tmp_path):
    items = load_task("synthetic", limit=12)
    expected = heldout_items(12)
    assert len(items) == 12 and len(load_task("synthetic")) == 400
    assert [(i.id, i.question, i.gold) for i in items] == [(e.id, e.question, e.answer) for e in expected]
    assert all(i.grader == "synthetic" for i in items)
    assert items[0].metadata == {"family": expected[0].family, "difficulty": expected[0].difficulty}
    generated = generate("addition", 3, seed=5, split="heldout", difficulty=1)
    path = write_jsonl(tmp_path / "synthetic.jsonl", [g.to_dict() for g in generated])
    from_file = load_task("synthetic", tmp_path)
    assert [(i.id, i.gold) for i in from_file] == [(g.id, g.answer) for g in generated]
    write_jsonl(path, [{**generated[0].to_dict(), "family": "nope"}])
    with pytest.raises(TaskDataError, match=r"task 'synthetic': row 0 of .*synthetic.jsonl: family must be one of"):
        load_task("synthetic", path)


# ---------------------------------------------------------------------------------------------- prompts


LONG = ("Answer after a long amount of thinking. If you feel like you are finished early, spend the extra time "
        "trying to double-check your work until you are absolutely sure that you have the correct answer.")
SHORT = "Answer after a short amount of thinking. Do not spend excessive time double-checking your work."


def test_prompt_is_question_alone_and_control_suffixes_exact():
    item = TaskItem(id="1", question="What is 2+2?", gold="4", grader="math")
    assert build_prompt(item) == "What is 2+2?"
    assert build_prompt(item, Control("tokens", 1024)) == "What is 2+2?\n\nThink for up to 1024 tokens."
    assert build_prompt(item, Control("steps", 64)) == "What is 2+2?\n\nThink for up to 64 steps."
    assert build_prompt(item, Control("class", "long")) == "What is 2+2?\n\n" + LONG
    assert build_prompt(item, Control("class", "short")) == "What is 2+2?\n\n" + SHORT
    assert build_prompt("Q", Control("tokens", 1)) == "Q\n\nThink for up to 1 tokens."


def test_control_on_gpqa_follows_the_choices(tmp_path):
    (item,) = load_task("gpqa_diamond", write_csv(tmp_path / "g.csv", gpqa_rows()[4:5]))
    prompt = build_prompt(item, Control("tokens", 512))
    assert prompt.startswith(GPQA_QUESTIONS[4][0] + "\n\nA) ")
    assert prompt.endswith(f"\nD) {item.metadata['choices'][3]}\n\nThink for up to 512 tokens.")


def test_control_parse_and_label():
    assert Control.parse("tokens=512") == Control("tokens", 512)
    assert Control.parse(" steps:64 ") == Control("steps", 64)
    assert Control.parse("long") == Control("class", "long")
    assert Control.parse("class=short") == Control("class", "short")
    assert Control("tokens", 512).label == "tokens=512"
    assert Control.parse(Control("class", "long").label) == Control("class", "long")


@pytest.mark.parametrize(("kind", "value", "message"), [
    ("words", 10, r"control kind must be one of \['tokens', 'steps', 'class'\], got 'words'"),
    ("tokens", 0, r"tokens control value must be an integer >= 1, got 0"),
    ("steps", True, r"steps control value must be an integer >= 1, got True"),
    ("tokens", "512", r"tokens control value must be an integer >= 1, got '512'"),
    ("class", "medium", r"class control value must be one of \['long', 'short'\], got 'medium'"),
])
def test_control_validation(kind, value, message):
    with pytest.raises(ValueError, match=message):
        Control(kind, value)


@pytest.mark.parametrize(("text", "message"), [
    ("tokens=abc", r"tokens control value must be an integer >= 1, got 'abc'"),
    ("budget=5", r"control must look like tokens=N"),
    ("512", r"control must look like tokens=N"),
    ("class=huge", r"class control value must be one of"),
])
def test_control_parse_errors(text, message):
    with pytest.raises(ValueError, match=message):
        Control.parse(text)


def test_task_item_round_trip_and_validation():
    item = TaskItem(id="7", question="Q", gold="C", grader="mathvista", metadata={"choices": ["a"]},
                    images=("images/7.jpg",))
    assert TaskItem.from_dict(json.loads(json.dumps(item.to_dict()))) == item
    with pytest.raises(ValueError, match=r"grader must be one of .*'math'.*got 'exact'"):
        TaskItem(id="1", question="Q", gold="1", grader="exact")


# ---------------------------------------------------------------------------------------------- bad input


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"task 'aime24': data path .*nowhere does not exist"):
        load_task("aime24", tmp_path / "nowhere")


def test_directory_without_the_task_file(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(FileNotFoundError, match=r"task 'gsm8k': no data file for it in .*looked for gsm8k_test.jsonl"
                                                r".*main/test.jsonl.*the directory holds: notes.txt"):
        load_task("gsm8k", tmp_path)


def test_missing_required_columns_are_named(tmp_path):
    rows = [{"Question": "Q?", "Correct Answer": "a", "Incorrect Answer 1": "b"}]
    path = write_csv(tmp_path / "gpqa_diamond.csv", rows)
    with pytest.raises(TaskDataError, match=r"task 'gpqa_diamond': .*gpqa_diamond.csv lacks required column\(s\) "
                                            r"'Incorrect Answer 2'; 'Incorrect Answer 3'; found columns: 'Question', "
                                            r"'Correct Answer', 'Incorrect Answer 1'"):
        load_task("gpqa_diamond", path)
    with pytest.raises(TaskDataError, match=r"lacks required column\(s\) 'answer'; found columns: 'problem', 'id'"):
        load_task("math500", write_jsonl(tmp_path / "m.jsonl", [{"problem": "Q", "id": 1}]))


def test_row_without_gold_is_named(tmp_path):
    rows = [{"problem": "Q1", "answer": "1"}, {"problem": "Q2", "answer": None}, {"problem": "Q3", "answer": "3"}]
    with pytest.raises(TaskDataError, match=r"task 'math500': row 1 of .*m.jsonl has no 'answer' value"):
        load_task("math500", write_jsonl(tmp_path / "m.jsonl", rows))
    gsm = [{"question": "Q", "answer": "42"}]
    with pytest.raises(TaskDataError, match=r"task 'gsm8k': row 0 of .*g.jsonl: answer has no '####' line"):
        load_task("gsm8k", write_jsonl(tmp_path / "g.jsonl", gsm))


def test_unreadable_files(tmp_path):
    bad_jsonl = tmp_path / "aime24.jsonl"
    bad_jsonl.write_text('{"problem": "Q", "answer": "1"}\n{"problem": oops}\n')
    with pytest.raises(TaskDataError, match=r"task 'aime24': .*aime24.jsonl:2: not valid JSON"):
        load_task("aime24", tmp_path)
    bad_parquet = tmp_path / "x.parquet"
    bad_parquet.write_bytes(b"this is not parquet")
    with pytest.raises(TaskDataError, match=r"task 'aime24': cannot read .*x.parquet as Parquet"):
        load_task("aime24", bad_parquet)
    other = tmp_path / "aime.txt"
    other.write_text("Q")
    with pytest.raises(TaskDataError, match=r"cannot read .*aime.txt: unsupported file type '.txt'"):
        load_task("aime24", other)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(TaskDataError, match=r"empty.jsonl holds no rows"):
        load_task("aime24", empty)
    scalar = tmp_path / "scalar.json"
    scalar.write_text("[1, 2]")
    with pytest.raises(TaskDataError, match=r"element 0 of the list is not an object"):
        load_task("aime24", scalar)


def test_duplicate_ids_rejected(tmp_path):
    rows = [{"id": 1, "problem": "Q1", "answer": "1"}, {"id": 1, "problem": "Q2", "answer": "2"}]
    with pytest.raises(TaskDataError, match=r"rows 0 and 1 share the id '1'"):
        load_task("aime24", write_jsonl(tmp_path / "a.jsonl", rows))


# ---------------------------------------------------------------------------------------------- Hub (no network)


def test_hub_failure_says_pass_data_dir(monkeypatch):
    datasets = pytest.importorskip("datasets")

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(HubUnavailableError, match=r"task 'aime24': could not load simplescaling/aime24_nofigures, "
                                                  r"split 'train' from the Hugging Face Hub \(ConnectionError: "
                                                  r"offline\).*pass --data-dir"):
        load_task("aime24")
    with pytest.raises(HubUnavailableError, match=r"Idavidrein/gpqa \(config 'gpqa_diamond'\).*gated"):
        load_task("gpqa_diamond")


def test_hub_rows_drop_image_columns(monkeypatch):
    datasets = pytest.importorskip("datasets")
    rows = [mathvista_hub_row("1"), mathvista_hub_row("2", answer="30°")]
    features = datasets.Features({
        "pid": datasets.Value("string"), "question": datasets.Value("string"), "image": datasets.Value("string"),
        "decoded_image": datasets.Image(), "choices": datasets.Sequence(datasets.Value("string")),
        "unit": datasets.Value("string"), "precision": datasets.Value("float64"), "answer": datasets.Value("string"),
        "question_type": datasets.Value("string"), "answer_type": datasets.Value("string"),
        "metadata": {"source": datasets.Value("string"), "split": datasets.Value("string")},
        "query": datasets.Value("string"),
    })
    table = datasets.Dataset.from_list([{**r, "decoded_image": None} for r in rows], features=features)
    calls = []

    def fake_load(hub_id, config=None, split=None):
        calls.append((hub_id, config, split))
        return table

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    items = load_task("mathvista", limit=2)
    assert calls == [("AI4Math/MathVista", None, "testmini")]
    assert [(i.id, i.gold, i.metadata.get("gold_letter")) for i in items] == [("1", "90°", "C"), ("2", "30°", "A")]
    assert "image_root" not in items[0].metadata and items[0].images == ("images/1.jpg",)
