"""The embedded tiny reasoning model: its tokenizer, architecture, training data and recipe.

A few-million-parameter Llama-architecture model trained from scratch on CPU, on synthetic s1-style traces (step-by-step
work, some with a slip that a `Wait` re-check catches), in the `s1` format. Small enough to ship as
package data; real enough that budget forcing shows test-time scaling on the `synthetic` task.
`s1 train --preset tiny` reruns this recipe and reproduces the weights (deterministic given the seed).
"""

from __future__ import annotations

import json
import random
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from s1.forcing.formats import PRESETS
from s1.synthetic.generation import generate
from s1.synthetic.item import SyntheticItem
from s1.synthetic.words import WORDS

FORMAT = PRESETS["s1"]
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# ChatML whose generation prompt opens s1 thinking, so `--format auto` finds `s1`.
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n<|im_start|>think\\n' }}{% endif %}"
)


TRAIN_THREADS = 2

@dataclass(frozen=True)
class TinyRecipe:
    """Everything that decides the tiny model; the same recipe and seed give the same weights."""

    seed: int = 0
    families: tuple[str, ...] | None = ("addition",)  # None: every family
    train_items: int = 38400
    difficulties: tuple[int, ...] = (1,)
    recheck_prob: float | tuple[float, ...] = 0.35  # (per difficulty) a quick slip that `Wait` catches
    confirm_prob: float | tuple[float, ...] = 0.3  # (per difficulty) a re-check that confirms
    double_prob: float = 0.3  # a re-checked trace is re-checked once more (so a second `Wait` is familiar)
    hasty_prob: float = 0.5  # where the shortcut fails, a hasty trace slips and stops (the habit `Wait` fixes)
    vocab_size: int = 384
    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 4
    intermediate_size: int = 384
    max_positions: int = 1024

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def training_items(recipe: TinyRecipe) -> list[SyntheticItem]:
    """The curated training pool: the recipe's families (all by default) and difficulties, train split only."""
    families: list[str | None] = list(recipe.families) if recipe.families else [None]
    per_part = recipe.train_items // (len(recipe.difficulties) * len(families))
    items: list[SyntheticItem] = []
    for family in families:
        for n, level in enumerate(recipe.difficulties):
            items += generate(family, per_part, seed=recipe.seed * 1000 + level, split="train", difficulty=level,
                              recheck_prob=_per_level(recipe.recheck_prob, n),
                              confirm_prob=_per_level(recipe.confirm_prob, n), double_prob=recipe.double_prob,
                              hasty_prob=recipe.hasty_prob)
    random.Random(recipe.seed).shuffle(items)
    return items


def _per_level(value: float | tuple[float, ...], n: int) -> float:
    return value[n] if isinstance(value, tuple) else value


def answer_text(item: SyntheticItem) -> str:
    """The answer part after thinking; `Final Answer:` as the s1 cap string forces it."""
    return f"Final Answer: {item.answer}"


def template_words(corpus: list[str], max_words: int) -> list[str]:
    """The trace vocabulary that gets whole-word tokens: the most frequent words of the corpus, minus the
    words the letter-counting family asks to spell (those must stay letter by letter)."""
    counts: dict[str, int] = {}
    for text in corpus:
        for word in re.findall(r"[A-Za-z]{2,}", text):
            counts[word] = counts.get(word, 0) + 1
    spelled = set(WORDS)
    ranked = sorted((w for w in counts if w not in spelled and w.lower() not in spelled),
                    key=lambda w: (-counts[w], w))
    return ranked[:max_words]


def build_tokenizer(corpus: list[str], vocab_size: int) -> Any:
    """Characters, plus whole-word tokens for the trace vocabulary.

    Digits and the letters of words to spell are single tokens, so the model copies and computes one
    symbol at a time (what a tiny transformer learns quickly); frequent template words are one token
    each, which keeps sequences short.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = [chr(c) for c in range(32, 127)] + ["\n", "<unk>"]
    room = max(0, (vocab_size - len(chars) - len(SPECIAL_TOKENS)) // 2)
    words = template_words([*corpus, "user assistant think answer"], room)
    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *chars, *words, *(" " + w for w in words)])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    # a word token carries its leading space; anything else is one character
    pattern = rf" ?\b(?:{alternatives})\b|[\s\S]" if words else r"[\s\S]"
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=SPECIAL_TOKENS[1:], model_max_length=1024)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(tokenizer: Any, recipe: TinyRecipe) -> Any:
    """A Llama-architecture decoder. (Not Qwen2: transformers 5 loads any tokenizer saved beside a
    Qwen2 config as `Qwen2Tokenizer`, whose built-in pre-tokenizer silently replaces ours.)"""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(recipe.seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=recipe.hidden_size, intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.layers, num_attention_heads=recipe.heads, num_key_value_heads=recipe.kv_heads,
        max_position_embeddings=recipe.max_positions, tie_word_embeddings=False, rope_theta=10000.0,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def train_tiny(output_dir: str | Path, recipe: TinyRecipe | None = None, max_steps: int | None = None,
               preset_overrides: dict[str, Any] | None = None, log: Any = print,
               logging_steps: int = 10) -> dict[str, Any]:
    """Train the tiny reasoning model from scratch and save it (weights, tokenizer, recipe, losses)."""
    import torch

    from s1.train.presets import get_preset

    recipe = recipe or TinyRecipe()
    preset = get_preset("tiny").replace(seed=recipe.seed, **(preset_overrides or {}))
    # A fixed thread count: the weights then do not depend on the machine's core count (reductions
    # split differently). Two, as on the 2-core CPU the recipe is timed on (one is 1.7x slower there).
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        return _train(output_dir, recipe, preset, max_steps, log, logging_steps)
    finally:
        torch.set_num_threads(threads)


def _train(output_dir: str | Path, recipe: TinyRecipe, preset: Any, max_steps: int | None, log: Any,
           logging_steps: int) -> dict[str, Any]:
    import torch
    from transformers import set_seed

    from s1.train.sft import to_prompt_completion, train_sft

    set_seed(recipe.seed, deterministic=True)
    items = training_items(recipe)
    corpus = [f"{it.question}\n{it.thinking}\n{answer_text(it)}" for it in items[:4000]]  # already shuffled
    tokenizer = build_tokenizer(corpus, recipe.vocab_size)
    model = build_model(tokenizer, recipe)
    log(f"tiny model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
        f"{len(items)} training items, vocab {len(tokenizer)}")
    rows = [to_prompt_completion({"question": it.question, "thinking": it.thinking, "answer": answer_text(it)},
                                 tokenizer, FORMAT) for it in items]
    out = Path(output_dir)
    result = train_sft(model, tokenizer, rows, preset, str(out / "_trainer"), max_steps=max_steps,
                       logging_steps=logging_steps)
    log(f"trained {result.steps} steps in {result.train_seconds:.0f}s; loss {result.losses[0]:.3f} -> "
        f"{result.losses[-1]:.3f}; {result.truncated} examples over the block size")
    model = model.to(torch.float32).eval()
    model.generation_config.do_sample = False
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    summary = {"recipe": recipe.to_dict(), "preset": asdict(preset), "steps": result.steps,
               "train_seconds": round(result.train_seconds, 1), "losses": result.losses,
               "truncated": result.truncated, "examples": result.examples}
    (out / "s1_recipe.json").write_text(json.dumps(summary, indent=2))
    shutil.rmtree(out / "_trainer", ignore_errors=True)
    return summary
