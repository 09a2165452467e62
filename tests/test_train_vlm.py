"""Vision-language SFT on a tiny random Qwen2-VL built locally: the label mask covers exactly the
response after image-token expansion, padding is masked, the vision tower freezes by its real names,
and a few steps lower the loss."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    PreTrainedTokenizerFast,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessorPil,
    Qwen2VLProcessor,
)

from s1.forcing.formats import PRESETS
from s1.train.presets import get_preset
from s1.train.vlm import VLMCollator, freeze_vision, load_vlm_records, train_vlm, vlm_example, vlm_record

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
            "<|video_pad|>"]
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
FMT = PRESETS["s1m"]


class ImageOnlyProcessor(Qwen2VLProcessor):
    """Qwen2-VL's processor without a video processor (that one needs torchvision, absent here)."""

    def check_argument_for_proper_class(self, argument_name, argument):
        return None if argument is None else super().check_argument_for_proper_class(argument_name, argument)

    def save_pretrained(self, save_directory, **kwargs):
        self.image_processor.save_pretrained(save_directory)
        self.tokenizer.save_pretrained(save_directory)


@pytest.fixture(scope="module")
def processor():
    return build_processor()


def build_processor(processor_class: type = ImageOnlyProcessor):
    """A tiny Qwen2-VL processor: a BPE tokenizer with Qwen2-VL's special tokens, the PIL image processor."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = ["What colour is the square? Let me think. It is red. Final answer: red", "blue green user assistant"]
    tok.train_from_iterator(corpus * 5, trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIALS,
                                                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=SPECIALS[1:])
    images = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=56 * 56 * 4)
    return processor_class(image_processor=images, tokenizer=fast, chat_template=TEMPLATE)


def tiny_qwen2vl(processor):
    torch.manual_seed(0)
    tok = processor.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIALS}
    config = Qwen2VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None),
        vision_config=dict(depth=1, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    return Qwen2VLForConditionalGeneration(config)


@pytest.fixture(scope="module")
def records(data_file):
    return load_vlm_records(data_file)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vlm")
    Image.new("RGB", (56, 56), (255, 0, 0)).save(folder / "red.png")
    Image.new("RGB", (112, 56), (0, 0, 255)).save(folder / "blue.png")
    rows = [{"image": "red.png", "question": "What colour is the square?", "thinking": "Let me think. It is red.",
             "answer": "Final answer: red"},
            {"images": ["blue.png"], "question": "What colour?",
             "response": "<think>It is blue.</think>Final answer: blue"}]
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_mask_is_exactly_the_response_after_image_expansion(processor, records):
    examples = [vlm_example(r, processor, FMT) for r in records]
    batch = VLMCollator(processor)(examples)
    tok = processor.tokenizer
    image_id = tok.convert_tokens_to_ids("<|image_pad|>")
    merge = processor.image_processor.merge_size ** 2
    for i, ex in enumerate(examples):
        ids, labels, mask = batch["input_ids"][i], batch["labels"][i], batch["attention_mask"][i]
        n_image = int(batch["image_grid_thw"][i].prod()) // merge
        assert int((ids == image_id).sum()) == n_image > 1  # the one placeholder was expanded
        response = tok(ex["completion"], add_special_tokens=False)["input_ids"]
        prompt_len = int(mask.sum()) - len(response)
        # the prompt as the model sees it: the unexpanded text is shorter by the extra image tokens
        unexpanded = len(tok(ex["prompt"], add_special_tokens=False)["input_ids"])
        assert prompt_len == unexpanded + n_image - 1
        assert labels[:prompt_len].eq(-100).all()
        assert labels[prompt_len:int(mask.sum())].tolist() == response  # token by token, EOS included
        assert labels[mask == 0].eq(-100).all() and ids[mask == 0].eq(tok.pad_token_id).all()
        assert response[-1] == tok.eos_token_id
    assert batch["attention_mask"].eq(0).any()  # the two rows differ in length: padding was exercised
    assert examples[1]["completion"].startswith("It is blue.")  # the opener is in the prompt, not doubled


def test_truncation_is_counted_after_expansion_and_cuts_only_the_response(processor, records):
    from s1.train.vlm import count_over_block

    examples = [vlm_example(r, processor, FMT) for r in records]
    full = VLMCollator(processor)(examples[:1])
    length = int(full["attention_mask"].sum())
    assert count_over_block(examples[:1], processor, length) == 0
    assert count_over_block(examples[:1], processor, length - 1) == 1
    cut = VLMCollator(processor, max_length=length - 3)(examples[:1])
    assert cut["input_ids"].shape[1] == length - 3
    assert cut["input_ids"][0].tolist() == full["input_ids"][0, : length - 3].tolist()
    assert (cut["labels"][0] != -100).sum() == (full["labels"][0] != -100).sum() - 3


def test_freeze_by_real_module_names(processor):
    model = tiny_qwen2vl(processor)
    frozen = freeze_vision(model, "tower")
    assert frozen and all(n.startswith("model.visual.") and ".merger." not in n for n in frozen)
    assert all(p.requires_grad for n, p in model.named_parameters() if "merger" in n or "language_model" in n)
    assert any(".merger." in n for n in freeze_vision(tiny_qwen2vl(processor), "all"))
    with pytest.raises(ValueError, match="allowed: none, tower, all"):
        freeze_vision(model, "some")


def test_a_few_steps_lower_the_loss_and_the_checkpoint_reloads(processor, records, tmp_path):
    model = tiny_qwen2vl(processor)
    examples = [vlm_example(r, processor, FMT) for r in records]
    preset = get_preset("tiny").replace(learning_rate=3e-3, warmup_ratio=0.0, global_batch_size=2,
                                        per_device_batch_size=2, block_size=512)
    trainer = train_vlm(model, processor, examples, preset, str(tmp_path / "t"), max_steps=8, logging_steps=1)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 8 and losses[-1] < losses[0]
    trainer.save_model(str(tmp_path / "out"))
    again = Qwen2VLForConditionalGeneration.from_pretrained(tmp_path / "out")
    state = model.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in again.state_dict().items())
    # the checkpoint answers an image question through the transformers backend (load_backend(path) builds
    # the same pair with AutoProcessor, which needs torchvision for Qwen2-VL's video processor; absent here)
    from s1.backends.hf.backend import HFBackend
    from s1.forcing.policy import BudgetPolicy
    from s1.forcing.request import Request

    backend = HFBackend(again.eval(), processor, format="s1m")
    [gen] = backend.generate([Request("q", messages="What colour?", images=(records[0]["images"][0],))],
                             BudgetPolicy(max_thinking_tokens=4, max_answer_tokens=4))
    assert gen.error is None and gen.prompt_tokens > 4


def test_a_missing_image_is_named(processor, tmp_path):
    example = vlm_example(vlm_record({"image": "gone.png", "question": "q", "response": "r"}, tmp_path), processor, FMT)
    with pytest.raises(ValueError, match="cannot open training image .*gone.png"):
        VLMCollator(processor)([example])


def test_bad_records_name_the_field():
    with pytest.raises(ValueError, match="'images'"):
        vlm_record({"question": "q", "response": "r"})
    with pytest.raises(ValueError, match="'question'"):
        vlm_record({"image": "a.png", "response": "r"})
    with pytest.raises(ValueError, match="'thinking'"):
        vlm_record({"image": "a.png", "question": "q", "answer": "a"})


@pytest.mark.parametrize("lora", [False, True])
def test_run_vision_trains_from_jsonl_and_saves_model_and_processor(processor, data_file, tmp_path, monkeypatch,
                                                                     lora):
    import transformers

    from s1.train.lora import LoraOptions
    from s1.train.run import SUMMARY_FILE, TrainJob, run_vision

    if lora:
        pytest.importorskip("peft")
    base = tmp_path / "base"
    tiny_qwen2vl(processor).save_pretrained(base)
    # AutoProcessor would need torchvision for Qwen2-VL's video processor; hand it the image-only one
    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", lambda *a, **k: processor)
    out = tmp_path / "out"
    job = TrainJob(model=str(base), data=str(data_file), output=str(out), preset="tiny", vision=True, max_steps=2,
                   logging_steps=1, freeze_vision="all", lora=LoraOptions(r=4, alpha=8) if lora else None,
                   preset_overrides={"global_batch_size": 2, "per_device_batch_size": 2, "block_size": 512,
                                     "warmup_ratio": 0.0, "gradient_checkpointing": lora})
    summary = run_vision(job, log=lambda m: None)
    assert summary["steps"] == 2 and summary["format"] == "s1m" and summary["freeze_vision"] == "all"
    assert not (out / "adapter_config.json").exists()  # LoRA is merged: a plain checkpoint
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        names = list(f.keys())
    assert names and not any("lora" in k for k in names)
    assert summary["over_block"] == 0
    assert (out / "model.safetensors").exists() and (out / "preprocessor_config.json").exists()
    assert (out / SUMMARY_FILE).exists()
    trained = Qwen2VLForConditionalGeneration.from_pretrained(out).state_dict()
    original = Qwen2VLForConditionalGeneration.from_pretrained(base).state_dict()
    assert all(torch.equal(trained[k], original[k]) for k in original if k.startswith("model.visual."))
    assert not all(torch.equal(trained[k], original[k]) for k in original if "language_model" in k)
