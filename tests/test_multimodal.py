"""Images through budget forcing (S1-M): a tiny random Qwen2-VL built locally from a config, with a
Qwen2-VL image processor and a small tokenizer made here (no download), and PNGs the test draws.

What users rely on: the image reaches the model, budgets and S1-M's ignore cycle are exact, image tokens
are prompt tokens and never thinking, single pass == multi-round, sweeps == independent runs, and the
CLI takes `--image`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast, Qwen2VLConfig, Qwen2VLForConditionalGeneration
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor
from transformers.processing_utils import ProcessorMixin

sys.path.insert(0, str(Path(__file__).parent))
from tiny import CORPUS  # noqa: E402

from s1.backends.hf.backend import HFBackend
from s1.forcing.formats import S1M_IGNORE_STRINGS
from s1.forcing.policy import BudgetPolicy
from s1.forcing.request import Request
from s1.forcing.sweep import run_sweep

VISION_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
# Qwen2-VL's chat template, reduced to images and text: an image part becomes the vision placeholder.
TEMPLATE = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' }}"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif p['type'] == 'text' %}{{ p['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


class ImageProcessor(Qwen2VLProcessor):
    """`Qwen2VLProcessor` without its video processor, which needs torchvision (not installed here)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


def build_tokenizer(think_tokens: bool) -> PreTrainedTokenizerFast:
    """Byte-level BPE with Qwen2-VL's special tokens; `think_tokens` makes <think>/</think> atomic."""
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *VISION_TOKENS]
    if think_tokens:
        specials += ["<think>", "</think>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS + ["<think> </think>\nFinal answer: What color is the square?"] * 5, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=specials[1:])
    fast.chat_template = TEMPLATE
    return fast


def image_processor() -> Qwen2VLImageProcessorPil:
    # 56x56 pixels -> 4x4 patches of 14 -> 2x2 merged = 4 image tokens
    return Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=56 * 56 * 4, patch_size=14, merge_size=2,
                                    temporal_patch_size=2)


def build_model(tok, eos_boost: float = 0.0) -> Qwen2VLForConditionalGeneration:
    """Random tiny Qwen2-VL weights; `eos_boost` makes the model try to end its thinking now and then."""
    ids = {t: tok.convert_tokens_to_ids(t) for t in ["<|im_end|>", "<|endoftext|>", *VISION_TOKENS]}
    config = Qwen2VLConfig(
        text_config=dict(vocab_size=384, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                         rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}, tie_word_embeddings=False,
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"], bos_token_id=None),
        vision_config=dict(depth=1, embed_dim=16, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    if eos_boost:
        with torch.no_grad():
            model.lm_head.weight[ids["<|im_end|>"]] *= eos_boost
    return model


def save_tiny_vl(path: Path, think_tokens: bool = False, eos_boost: float = 0.0) -> Path:
    tok = build_tokenizer(think_tokens)
    build_model(tok, eos_boost).save_pretrained(path)
    tok.save_pretrained(path)
    image_processor().save_pretrained(path)
    return path


def load_tiny_vl(path: Path) -> tuple[Qwen2VLForConditionalGeneration, ImageProcessor]:
    """What `AutoProcessor` would build, minus the video processor (no torchvision here)."""
    tok = AutoTokenizer.from_pretrained(path)
    processor = ImageProcessor(Qwen2VLImageProcessorPil.from_pretrained(path), tok, chat_template=TEMPLATE)
    return Qwen2VLForConditionalGeneration.from_pretrained(path).eval(), processor


def png(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (56, 56)) -> Path:
    from PIL import Image

    image = Image.new("RGB", size, color)
    for x in range(0, size[0], 7):  # some structure, so patches differ
        image.putpixel((x, x % size[1]), (255 - color[0], x % 256, color[2]))
    image.save(path)
    return path


@pytest.fixture(scope="module")
def vl_dir(tmp_path_factory) -> Path:
    return save_tiny_vl(tmp_path_factory.mktemp("tiny-qwen2-vl"), eos_boost=2.0)


@pytest.fixture(scope="module")
def vl(vl_dir):
    return load_tiny_vl(vl_dir)


@pytest.fixture(scope="module")
def vl_plain(tmp_path_factory):
    """No EOS boost: thinking runs to the cap."""
    return load_tiny_vl(save_tiny_vl(tmp_path_factory.mktemp("tiny-qwen2-vl-plain")))


@pytest.fixture(scope="module")
def vl_think(tmp_path_factory):
    """<think>/</think> as added tokens: the end of thinking is one token, so a single pass is possible."""
    return load_tiny_vl(save_tiny_vl(tmp_path_factory.mktemp("tiny-qwen2-vl-think"), think_tokens=True,
                                     eos_boost=2.5))


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("images")
    return [png(root / "red.png", (200, 10, 10)), png(root / "blue.png", (10, 10, 200)),
            png(root / "wide.png", (10, 200, 10), (84, 56))]


def ask(i: int, image: Path | None, question: str = "What color is the square?") -> Request:
    return Request(f"q{i}", messages=question, images=(image,) if image else ())


def ignore_texts(g) -> list[str]:
    return [s.text for s in g.segments if s.kind == "ignore"]


# -- budgets, image tokens, the image itself -----------------------------------------------------------------
@pytest.mark.parametrize("budget", [0, 5, 17])
def test_budget_is_exact_and_image_tokens_are_prompt_tokens(vl_plain, images, budget):
    model, processor = vl_plain
    backend = HFBackend(model, processor, format="s1m")
    assert not backend.single_pass  # plain-text </think> is several tokens: rounds, as S1-M needs
    with_image, text_only = backend.generate([ask(0, images[0]), ask(1, None)],
                                             BudgetPolicy(max_thinking_tokens=budget, max_answer_tokens=4))
    for g in (with_image, text_only):
        assert g.error is None, g.error
        assert g.cap_hit and g.thinking_tokens == budget and g.thinking_forced_tokens == 0
        assert g.text.count("</think>\nFinal answer: ") == 1 and g.answer.startswith("Final answer:")
        assert g.answer_tokens <= 4
    # the image is 4 merged patches: 4 prompt tokens more than the same question without it, plus the
    # vision start / end markers; none of them counts as thinking
    assert with_image.meta == {"image_tokens": 4}
    assert with_image.prompt_tokens == text_only.prompt_tokens + 4 + 2
    assert with_image.prompt.index("<|vision_start|>") < with_image.prompt.index("What color")  # image first
    assert with_image.prompt.endswith("<|im_start|>assistant\n<think>")


def test_the_pixels_reach_the_model(vl_plain, images):
    model, processor = vl_plain
    backend = HFBackend(model, processor, format="s1m")
    policy = BudgetPolicy(max_thinking_tokens=12, max_answer_tokens=2)
    red, blue, again = backend.generate([ask(0, images[0]), ask(1, images[1]), ask(2, images[0])], policy)
    assert red.token_ids == again.token_ids  # deterministic
    assert red.token_ids != blue.token_ids  # same prompt text, different image, different thinking


def test_s1m_ignore_strings_cycle_in_order(vl, images):
    model, processor = vl
    backend = HFBackend(model, processor, format="s1m")
    policy = BudgetPolicy(max_thinking_tokens=400, num_ignore=9, max_answer_tokens=3)
    gens = backend.generate([ask(i, im) for i, im in enumerate(images)], policy)
    for g in gens:
        assert g.error is None
        # adjacent ignore strings share a segment, so compare the forced text as a whole
        expected = [processor.tokenizer.decode(processor.tokenizer.encode(S1M_IGNORE_STRINGS[k % 7]))
                    for k in range(g.ignores_applied)]
        assert "".join(ignore_texts(g)) == "".join(expected)
        assert g.thinking_forced_tokens == sum(len(processor.tokenizer.encode(t)) for t in expected)
    assert max(g.ignores_applied for g in gens) >= 8  # the seven strings came round again


POLICIES = [
    BudgetPolicy(max_thinking_tokens=30, max_answer_tokens=5),
    BudgetPolicy(max_thinking_tokens=80, num_ignore=3, max_answer_tokens=5),
    BudgetPolicy(max_thinking_tokens=80, min_thinking_tokens=20, num_ignore=1, max_answer_tokens=5),
]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.label())
def test_single_pass_equals_multi_round_with_images(vl_think, images, policy):
    model, processor = vl_think
    reqs = [ask(0, images[0]), ask(1, images[2]), ask(2, None)]  # two image sizes and a text-only row, batched
    single = HFBackend(model, processor, format="s1m", mode="single").generate(reqs, policy)
    multi = HFBackend(model, processor, format="s1m", mode="multi").generate(reqs, policy)
    assert all(g.error is None for g in single + multi)
    assert [g.token_ids for g in single] == [g.token_ids for g in multi]
    for a, b in zip(single, multi, strict=True):
        assert (a.thinking_tokens, a.ignores_applied, a.cap_hit, a.finish_reason, a.prompt_tokens) == (
            b.thinking_tokens, b.ignores_applied, b.cap_hit, b.finish_reason, b.prompt_tokens)
    if policy.num_ignore:
        assert any(g.ignores_applied for g in single)


def test_batched_equals_one_by_one_with_images(vl, images):
    model, processor = vl
    policy = BudgetPolicy(max_thinking_tokens=40, num_ignore=2, max_answer_tokens=4)
    reqs = [ask(0, images[0]), ask(1, images[2]), ask(2, None), ask(3, images[1])]
    batched = HFBackend(model, processor, format="s1m", batch_size=4).generate(reqs, policy)
    alone = [HFBackend(model, processor, format="s1m", batch_size=1).generate([r], policy)[0] for r in reqs]
    assert [g.token_ids for g in batched] == [g.token_ids for g in alone]


# A plain-text closer is several tokens, so it is no end-of-thinking trigger: `sweep.divergence` replays a
# replaced natural end with `end_token`, which the machine never counts as a sampled thinking token.
def test_s1m_num_ignore_sweep_equals_independent_runs(vl, images):
    model, processor = vl
    backend = HFBackend(model, processor, format="s1m")
    settings = [BudgetPolicy(max_thinking_tokens=120, num_ignore=k, max_answer_tokens=4) for k in range(0, 8)]
    reqs = [ask(0, images[0]), ask(1, images[1])]
    swept = run_sweep(backend, reqs, settings).generations
    for n, req in enumerate(reqs):
        for k, policy in enumerate(settings):
            (alone,) = backend.generate([req], policy)
            got = swept[n * len(settings) + k]
            assert got.token_ids == alone.token_ids, (req.id, policy.label())
            assert (got.ignores_applied, got.thinking_tokens, got.thinking_forced_tokens, got.answer_forced_tokens) == (
                alone.ignores_applied, alone.thinking_tokens, alone.thinking_forced_tokens, alone.answer_forced_tokens)
    assert max(g.ignores_applied for g in swept) == 7


def test_answer_has_its_own_cap(vl_plain, images):
    model, processor = vl_plain
    backend = HFBackend(model, processor, format="s1m")
    (g,) = backend.generate([ask(0, images[0])], BudgetPolicy(max_thinking_tokens=6, max_answer_tokens=2))
    assert g.finish_reason == "length" and g.answer_tokens == 2 and g.thinking_closed


def test_runaway_rounds_end_as_length_not_a_hang(vl_think, images):
    """A model that ends its thinking right after every forced "Wait" never reaches a `wait`-mode minimum
    (forced tokens do not count); rounds stop at the single pass's engine limit and say so."""
    model, processor = vl_think
    policy = BudgetPolicy(max_thinking_tokens=80, min_thinking_tokens=20, min_thinking_mode="wait",
                          max_answer_tokens=5)
    gens = HFBackend(model, processor, format="s1m", mode="multi").generate([ask(1, images[1])], policy)
    assert gens[0].error is None and gens[0].finish_reason == "length" and not gens[0].thinking_closed


def test_unreadable_image_is_a_failed_record_naming_it(vl, tmp_path):
    model, processor = vl
    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello")
    backend = HFBackend(model, processor, format="s1m")
    missing, garbage = backend.generate([ask(0, tmp_path / "nope.png"), ask(1, bad)],
                                        BudgetPolicy(max_thinking_tokens=4))
    assert missing.error is not None and "request 'q0': image 0" in missing.error and "nope.png" in missing.error
    assert garbage.error is not None and "request 'q1': image 0" in garbage.error


def test_images_without_a_processor_are_a_clear_error(tiny_model, tiny_tok, images):
    (g,) = HFBackend(tiny_model, tiny_tok, format="s1").generate([ask(0, images[0])],
                                                                 BudgetPolicy(max_thinking_tokens=4))
    assert g.error is not None and "no processor" in g.error


def test_request_images_go_before_the_text():
    req = Request("a", messages=[{"role": "user", "content": "Q?"}], images=("x.png", "y.png"), system="S")
    chat = req.chat()
    assert chat[0] == {"role": "system", "content": "S"}
    assert [p["type"] for p in chat[1]["content"]] == ["image", "image", "text"]
    assert req.image_sources() == ["x.png", "y.png"]
    with pytest.raises(ValueError, match="images need messages"):
        Request("b", prompt="raw", images=("x.png",))
    with pytest.raises(ValueError, match="images must be a list"):
        Request("c", messages="Q", images="x.png")


# -- the CLI -------------------------------------------------------------------------------------------------
def test_cli_generate_with_image(vl_dir, images, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import s1.backends.images as images_module
    from s1.cli import app

    monkeypatch.setattr(images_module, "load_vision_model", lambda model, **kw: load_tiny_vl(Path(model)))
    runner = CliRunner()
    args = ["generate", "--model", str(vl_dir), "--format", "s1m", "--device", "cpu", "--max-thinking-tokens", "7",
            "--max-answer-tokens", "3", "--json"]
    res = runner.invoke(app, [*args, "-p", "What color is the square?", "--image", str(images[0])])
    assert res.exit_code == 0, res.output
    (row,) = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert row["error"] is None and row["thinking_tokens"] == 7 and row["meta"] == {"image_tokens": 4}
    assert "<|image_pad|>" in row["prompt"]

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "p1", "question": "What color?", "images": [str(images[1])]}) + "\n"
                       + json.dumps({"id": "p2", "question": "What color?", "images": [str(tmp_path / "gone.png")]})
                       + "\n")
    res = runner.invoke(app, [*args, "--prompts-file", str(prompts)])
    rows = {r["prompt_id"]: r for r in (json.loads(x) for x in res.stdout.splitlines() if x.startswith("{"))}
    assert rows["p1"]["error"] is None and rows["p1"]["meta"] == {"image_tokens": 4}
    assert "gone.png" in rows["p2"]["error"] and res.exit_code == 1  # recorded, counted, never dropped

    res = runner.invoke(app, [*args, "--raw-prompt", "-p", "x", "--image", str(images[0])])
    assert res.exit_code != 0 and "--image" in res.output
