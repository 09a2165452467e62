"""The tiny reasoning model recipe (end to end at a toy size) and the held-out benchmark set."""

from __future__ import annotations

import json

import pytest

from s1.forcing.policy import BudgetPolicy
from s1.forcing.request import Request
from s1.grading import grade
from s1.synthetic.benchmark import heldout_items
from s1.synthetic.generation import split_of
from s1.synthetic.tiny_model import TinyRecipe, train_tiny, training_items

TOY_PRESET = {"global_batch_size": 8, "per_device_batch_size": 8, "learning_rate": 1e-2}
TOY = TinyRecipe(train_items=96, difficulties=(1,), vocab_size=300, hidden_size=32, layers=1, heads=2, kv_heads=1,
                 intermediate_size=64, max_positions=512)


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy-tiny")
    summary = train_tiny(out, TOY, max_steps=12, preset_overrides=TOY_PRESET,
                         log=lambda m: None, logging_steps=2)
    return out, summary


def test_recipe_trains_with_falling_loss_and_saves_a_loadable_model(toy_model):
    out, summary = toy_model
    losses = summary["losses"]
    assert summary["steps"] == 12 and len(losses) >= 2
    assert losses[-1] < losses[0] * 0.8
    assert json.loads((out / "s1_recipe.json").read_text())["recipe"] == json.loads(json.dumps(TOY.to_dict()))
    from s1.backends import load_backend

    backend = load_backend(str(out), device="cpu")  # format auto: the chat template opens s1 thinking
    assert backend.format.name == "s1" and backend.single_pass
    g = backend.generate([Request("q", messages="What is 12 + 34?")], BudgetPolicy(max_thinking_tokens=10,
                                                                                   max_answer_tokens=4))[0]
    assert g.error is None and g.thinking_tokens <= 10 and g.prompt.endswith("<|im_start|>think\n")


def test_the_saved_tokenizer_reloads_exactly_as_it_was_trained(toy_model):
    """transformers may swap in a model-specific tokenizer class on load; the tiny model must come back
    with the very tokenization it was trained on."""
    from transformers import AutoTokenizer

    from s1.synthetic import generate
    from s1.synthetic.tiny_model import answer_text, build_tokenizer

    out, _ = toy_model
    items = training_items(TOY)
    trained = build_tokenizer([f"{it.question}\n{it.thinking}\n{answer_text(it)}" for it in items], TOY.vocab_size)
    loaded = AutoTokenizer.from_pretrained(out)
    for it in generate(None, 20, seed=5, split="heldout", difficulty=1):
        text = f"<|im_start|>user\n{it.question}<|im_end|>\n<|im_start|>think\n{it.thinking}"
        ids = loaded.encode(text, add_special_tokens=False)
        assert ids == trained.encode(text, add_special_tokens=False)
        assert loaded.decode(ids) == text
    assert "4" in loaded.convert_ids_to_tokens(loaded.encode("1234", add_special_tokens=False))


def test_the_recipe_is_deterministic(toy_model, tmp_path):
    out, summary = toy_model
    again = train_tiny(tmp_path / "again", TOY, max_steps=12,
                       preset_overrides=TOY_PRESET, log=lambda m: None,
                       logging_steps=2)
    assert again["losses"] == summary["losses"]
    assert (tmp_path / "again" / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()


def test_heldout_benchmark_items_never_appear_in_training_data():
    train_questions = {it.question for it in training_items(TinyRecipe())}
    held = heldout_items(400)
    assert len(held) == 400 and len({it.id for it in held}) == 400
    assert not train_questions & {it.question for it in held}
    assert all(split_of(it.family, it.question) == "heldout" for it in held)
    assert {(it.family, it.difficulty) for it in held} == {("addition", 1)}  # what the tiny model learns


def score(item, answer_text: str) -> bool:
    """What `s1 eval` and the tiny_scaling benchmark count: the synthetic grader's verdict."""
    return grade("synthetic", answer_text, item.answer, {"family": item.family}).correct


def test_benchmark_scoring_needs_the_answer_after_thinking():
    item = heldout_items(1)[0]
    assert score(item, f"Final Answer: {item.answer}")
    assert not score(item, "")
    assert not score(item, "Final Answer: not a number")


def test_recipe_can_train_on_a_subset_of_families_and_the_benchmark_can_score_one():
    items = training_items(TinyRecipe(families=("addition", "sort"), difficulties=(1, 2), train_items=400))
    assert {it.family for it in items} == {"addition", "sort"} and len(items) == 400
    assert {it.difficulty for it in items} == {1, 2}
    held = heldout_items(50, family="sort")
    assert len(held) == 50 and {it.family for it in held} == {"sort"}
    with pytest.raises(ValueError, match="n must be"):
        heldout_items(0)


# ---------------------------------------------------------------- the shipped model (package data)


@pytest.fixture(scope="module")
def shipped():
    from s1.backends import load_backend
    from s1.models import TINY_MODEL_DIR

    if not (TINY_MODEL_DIR / "model.safetensors").exists():
        pytest.fail(f"the embedded tiny model is missing from {TINY_MODEL_DIR}")
    return load_backend(None, device="cpu", batch_size=64)  # no --model: the embedded default, offline


def test_the_shipped_model_is_small_and_loads_offline_as_the_default(shipped):
    from s1.models import TINY_MODEL_DIR

    size = sum(p.stat().st_size for p in TINY_MODEL_DIR.iterdir())
    assert size <= 20 * 2**20
    assert shipped.format.name == "s1"  # its chat template opens s1 thinking, so `auto` finds it


def test_the_shipped_model_reasons_better_the_longer_it_may_think(shipped):
    items = heldout_items(80)
    requests = [Request(it.id, messages=it.question) for it in items]

    def accuracy(budget: int) -> float:
        gens = shipped.generate(requests, BudgetPolicy(max_thinking_tokens=budget, max_answer_tokens=16))
        return sum(score(it, g.answer) for it, g in zip(items, gens, strict=True)) / len(items)

    assert accuracy(4) <= 0.2  # far too short: it has not worked anything out yet
    assert accuracy(256) >= 0.7  # enough room: it works the problem and answers correctly
