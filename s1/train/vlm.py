"""Vision-language SFT (Qwen2-VL / Qwen2.5-VL, S1-M's setup): image + prompt + response records.

The prompt is the processor's chat template with one image slot per image, ending in the format's
thinking opener as inference builds it (`completion` layout), or the opener starts the response and
is learnt with it (`chat` layout: S1-M's, whose responses begin with `<think>`). The collator runs the
processor on the prompt *with its images*, so `<|image_pad|>` is already expanded to one token per
merged patch when the prompt's length is taken; the response's tokens follow. Labels are -100 on
the whole expanded prompt and on padding, the response tokens otherwise. (S1-M took the prompt
length before expansion, so its mask was short by the image tokens and the loss covered part of the
prompt; it also trained on right padding.) Tokenising prompt and response separately also matches
inference, which continues from the tokenised prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s1.forcing.formats import ReasoningFormat
from s1.train.presets import SFTPreset

FREEZE_MODES = ("none", "tower", "all")  # train the vision side fully / freeze all but the merger / freeze it all


def vlm_record(row: dict[str, Any], base_dir: str | Path | None = None) -> dict[str, Any]:
    """`images` (paths; or one `image`), `question` (or `prompt`), and `response` or `thinking` + `answer`."""
    images = row.get("images", row.get("image"))
    if isinstance(images, str | Path) or hasattr(images, "size"):
        images = [images]
    if not images:
        raise ValueError(f"vision record needs 'images' (a list of paths) or 'image'; got keys {sorted(row)}")
    question = row.get("question", row.get("prompt"))
    if not isinstance(question, str) or not question:
        raise ValueError(f"vision record needs a non-empty string 'question' (or 'prompt'); got keys {sorted(row)}")
    if "response" in row:
        if not isinstance(row["response"], str) or not row["response"]:
            raise ValueError("vision record field 'response' must be a non-empty string")
        body: dict[str, str] = {"response": row["response"]}
    else:
        for key in ("thinking", "answer"):
            if not isinstance(row.get(key), str) or not row[key]:
                raise ValueError(f"vision record needs 'response' or non-empty strings 'thinking' and 'answer'; "
                                 f"{key!r} is missing or empty (keys {sorted(row)})")
        body = {"thinking": row["thinking"], "answer": row["answer"]}
    base = Path(base_dir) if base_dir is not None else None
    resolved = [str(base / im) if base is not None and isinstance(im, str | Path) and not Path(im).is_absolute()
                else im for im in images]
    return {"images": resolved, "question": question, **body}


def load_vlm_records(path: str | Path) -> list[dict[str, Any]]:
    """Vision records from a JSONL file; relative image paths are relative to the file."""
    import json

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"vision training data not found: {path}")
    rows = [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for n, row in enumerate(rows):
        try:
            out.append(vlm_record(row, p.parent))
        except ValueError as exc:
            raise ValueError(f"{p.name} line {n + 1}: {exc}") from None
    return out


def vlm_example(record: dict[str, Any], processor: Any, fmt: ReasoningFormat, system: str | None = None,
                layout: str = "completion") -> dict:
    """Prompt text (chat template, image slots), completion text, and the images (paths stay paths: the
    collator opens them, so a large image set is never all in memory). The thinking opener ends the
    prompt (`completion` layout, as inference builds it) or opens the completion, so it is learnt
    (`chat` layout: S1-M's responses start with it and its loss covers the whole response)."""
    content = [{"type": "image"} for _ in record["images"]] + [{"type": "text", "text": record["question"]}]
    messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": [{"type": "text", "text": system}]})
    prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    eos = processor.tokenizer.eos_token or ""
    if "response" in record:
        response = record["response"]
        response = response[len(fmt.think_open):] if response.startswith(fmt.think_open) else response
    else:
        response = record["thinking"].rstrip("\n") + "\n" + fmt.think_close + record["answer"]
    if layout == "chat":
        return {"prompt": prompt, "completion": fmt.think_open + response + eos, "images": list(record["images"])}
    return {"prompt": fmt.ensure_open(prompt), "completion": response + eos, "images": list(record["images"])}


def open_images(images: list[Any]) -> list[Any]:
    """PIL images as given; paths opened as RGB (a missing file is an error naming it)."""
    from PIL import Image

    opened = []
    for im in images:
        if hasattr(im, "size"):
            opened.append(im)
            continue
        try:
            with Image.open(im) as raw:
                opened.append(raw.convert("RGB"))
        except OSError as exc:
            raise ValueError(f"cannot open training image {str(im)!r}: {exc}") from exc
    return opened


@dataclass
class VLMCollator:
    """Batches of examples → model inputs with labels on the response only (after image expansion)."""

    processor: Any
    max_length: int | None = None

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        tok = self.processor.tokenizer
        if tok.pad_token_id is None:
            raise ValueError("the processor's tokenizer needs a pad token (see s1.train.padding)")
        rows, pixel_values, grids = [], [], []
        for ex in examples:
            prompt = self.processor(text=[ex["prompt"]], images=open_images(ex["images"]), return_tensors="pt")
            prompt_ids = prompt["input_ids"][0]
            completion_ids = torch.tensor(tok(ex["completion"], add_special_tokens=False)["input_ids"],
                                          dtype=prompt_ids.dtype)
            if self.max_length is not None:
                if len(prompt_ids) >= self.max_length:
                    raise ValueError(f"a prompt with its expanded image tokens has {len(prompt_ids)} tokens, "
                                     f"not below the block size {self.max_length}")
                completion_ids = completion_ids[: self.max_length - len(prompt_ids)]
            ids = torch.cat([prompt_ids, completion_ids])
            labels = torch.cat([torch.full_like(prompt_ids, -100), completion_ids])
            types = prompt.get("mm_token_type_ids")
            mm = torch.cat([types[0], torch.zeros_like(completion_ids)]) if types is not None else None
            rows.append((ids, labels, mm))
            pixel_values.append(prompt["pixel_values"])
            grids.append(prompt["image_grid_thw"])
        width = max(len(r[0]) for r in rows)
        batch = {
            "input_ids": torch.stack([_pad(r[0], width, tok.pad_token_id) for r in rows]),
            "attention_mask": torch.stack([_pad(torch.ones_like(r[0]), width, 0) for r in rows]),
            "labels": torch.stack([_pad(r[1], width, -100) for r in rows]),
            "pixel_values": torch.cat(pixel_values),
            "image_grid_thw": torch.cat(grids),
        }
        if all(r[2] is not None for r in rows):
            batch["mm_token_type_ids"] = torch.stack([_pad(r[2], width, 0) for r in rows])
        return batch


def count_over_block(examples: list[dict[str, Any]], processor: Any, block_size: int) -> int:
    """How many examples, image tokens expanded, exceed `block_size` (the collator cuts their response)."""
    collate = VLMCollator(processor)
    return sum(int(collate([ex])["attention_mask"].sum()) > block_size for ex in examples)


def _pad(row: Any, width: int, value: int) -> Any:
    import torch

    return torch.cat([row, torch.full((width - len(row),), value, dtype=row.dtype)])


def vision_module_name(model: Any) -> str:
    """The vision encoder's module path (`model.visual` in current transformers, `visual` before)."""
    names = [name for name, _ in model.named_modules() if name.split(".")[-1] == "visual"]
    if not names:
        raise ValueError(f"{type(model).__name__} has no 'visual' module; vision freezing supports Qwen2-VL / "
                         "Qwen2.5-VL")
    return min(names, key=len)


def freeze_vision(model: Any, mode: str = "tower") -> list[str]:
    """Freeze the vision side by its real parameter names; returns the names frozen.

    `tower`: the encoder (patch embedding, blocks) but not `merger`, the projector into the language
    model; `all`: the merger too; `none`: nothing."""
    if mode not in FREEZE_MODES:
        raise ValueError(f"unknown vision freeze mode {mode!r}; allowed: {', '.join(FREEZE_MODES)}")
    if mode == "none":
        return []
    prefix = vision_module_name(model) + "."
    frozen = []
    for name, param in model.named_parameters():
        if not name.startswith(prefix):
            continue
        if mode == "tower" and name[len(prefix):].startswith("merger."):
            continue
        param.requires_grad_(False)
        frozen.append(name)
    return frozen


def vlm_training_args(preset: SFTPreset, output_dir: str, max_steps: int | None = None,
                      logging_steps: int = 10, **overrides: Any) -> Any:
    """The preset's `TrainingArguments` for vision data: raw records reach the collator untouched."""
    from s1.train.sft import sft_config

    base = dict(remove_unused_columns=False, train_sampling_strategy="random")
    base.update(overrides)
    return sft_config(preset, output_dir, max_steps=max_steps, logging_steps=logging_steps, **base)


def train_vlm(model: Any, processor: Any, examples: list[dict[str, Any]], preset: SFTPreset, output_dir: str,
              max_steps: int | None = None, logging_steps: int = 10, freeze: str = "tower", args: Any = None,
              peft_config: Any = None, **overrides: Any) -> Any:
    """Fine-tune a Qwen2-VL-family model on `vlm_example`s; returns the transformers `Trainer` (trained).
    `args`: `vlm_training_args` built before the model was loaded (needed under ZeRO-3). `peft_config`:
    train LoRA adapters (`s1.train.lora.vlm_peft_config`) instead; `trainer.model` is then a PEFT model."""
    from transformers import Trainer

    from s1.train.warmup import make_trainer

    if not examples:
        raise ValueError("no training examples")
    freeze_vision(model, freeze)
    if args is None:
        args = vlm_training_args(preset, output_dir, max_steps=max_steps, logging_steps=logging_steps, **overrides)
    if peft_config is not None:
        from peft import get_peft_model

        if args.activation_checkpointing:  # frozen embeddings: checkpointed layers need inputs that want grads
            model.enable_input_require_grads()
        model = get_peft_model(model, peft_config)
    trainer = make_trainer(Trainer, preset, model=model, args=args, train_dataset=_ListDataset(examples),
                           data_collator=VLMCollator(processor, max_length=preset.block_size))
    trainer.train()
    return trainer


class _ListDataset:
    """A map-style dataset over examples holding PIL images (`datasets` would re-encode them)."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]
