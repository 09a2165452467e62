"""Reward models from Hugging Face checkpoints: outcome (ORM) and process (PRM) verifiers.

- `ORMVerifier`: any sequence-classification model scores the whole solution (one score).
- `PRMVerifier`: a score per step, read at a step tag placed after every step. Either a
  token-classification model (the tag position's positive-label probability) or a causal LM
  trained Math-Shepherd style (at the tag, P(good token) against P(bad token), e.g. `+` vs `-`).

Scores are probabilities in [0, 1]: a single-logit head goes through a sigmoid, a multi-label head
through a softmax (label `positive_label`, default 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from s1.forcing.binding import encode
from s1.methods.verifiers.base import Candidate, Scored


def _tokenizer_with_pad(tokenizer: Any) -> Any:
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise ValueError("the reward model's tokenizer has neither a pad nor an EOS token to pad batches with")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _right_padded(rows: list[list[int]], pad: int, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids.to(device), mask.to(device)


def _probabilities(logits: torch.Tensor, positive_label: int) -> torch.Tensor:
    """Per-row probability of the positive outcome from classification logits (..., labels)."""
    logits = logits.float()
    if logits.shape[-1] == 1:
        return torch.sigmoid(logits[..., 0])
    if not 0 <= positive_label < logits.shape[-1]:
        raise ValueError(f"positive_label must be in 0..{logits.shape[-1] - 1}, got {positive_label}")
    return torch.softmax(logits, dim=-1)[..., positive_label]


def _load(path: str, device: str, auto_class: Any) -> tuple[Any, Any]:
    from transformers import AutoTokenizer

    from s1.backends.loading import resolve_device

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = auto_class.from_pretrained(path, dtype=torch.float32)
    except OSError as exc:
        raise ValueError(f"cannot load reward model {path!r}: {exc}") from exc
    return model.to(resolve_device(device)).eval(), tokenizer


class ORMVerifier:
    """An outcome reward model: a sequence-classification head scores (question, solution).

    The pair is laid out with the tokenizer's chat template when it has one (user: question,
    assistant: solution), else as `question`, a blank line, `solution`. Inputs longer than
    `max_length` keep their end (where the answer is)."""

    def __init__(self, model: Any, tokenizer: Any, *, positive_label: int = 1, batch_size: int = 16,
                 max_length: int | None = None, name: str = "orm"):
        self.model = model.eval()
        self.tokenizer = _tokenizer_with_pad(tokenizer)
        if getattr(self.model.config, "pad_token_id", None) is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.positive_label = positive_label
        self.batch_size = batch_size
        self.max_length = max_length or getattr(model.config, "max_position_embeddings", None)
        self.name = name

    @classmethod
    def from_pretrained(cls, path: str, device: str = "auto", **kwargs: Any) -> ORMVerifier:
        from transformers import AutoModelForSequenceClassification

        model, tokenizer = _load(path, device, AutoModelForSequenceClassification)
        return cls(model, tokenizer, **kwargs)

    def text(self, c: Candidate) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            messages = [{"role": "user", "content": c.question}, {"role": "assistant", "content": c.solution()}]
            return self.tokenizer.apply_chat_template(messages, tokenize=False)
        return f"{c.question}\n\n{c.solution()}"

    def score(self, candidates: Sequence[Candidate]) -> list[Scored]:
        out: list[Scored] = []
        for start in range(0, len(candidates), self.batch_size):
            rows = [list(encode(self.tokenizer, self.text(c))) for c in candidates[start : start + self.batch_size]]
            if self.max_length:
                rows = [r[-self.max_length:] for r in rows]
            ids, mask = _right_padded(rows, self.tokenizer.pad_token_id, self.model.device)
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask).logits
            out += [Scored((float(p),)) for p in _probabilities(logits, self.positive_label).tolist()]
        return out


class PRMVerifier:
    """A process reward model: one score per step, read where `step_tag` follows the step.

    The input is the question and a newline, then each step followed by the tag and a newline (the
    answer, when there is one, is the last step). `mode="token"`: a token-classification model, the
    positive-label probability at each tag. `mode="lm"`: a causal LM, P(good) / (P(good) + P(bad)) of
    its next-token prediction at each tag. Inputs longer than `max_length` keep their end; steps whose
    tag was cut off get no score."""

    def __init__(self, model: Any, tokenizer: Any, step_tag: str = " ки", *, mode: str = "token",
                 good_token: str = "+", bad_token: str = "-", positive_label: int = 1, batch_size: int = 16,
                 max_length: int | None = None, name: str = "prm"):
        if mode not in ("token", "lm"):
            raise ValueError(f"mode must be 'token' or 'lm', got {mode!r}")
        self.model = model.eval()
        self.tokenizer = _tokenizer_with_pad(tokenizer)
        self.tag_id = self._single(step_tag, "step_tag")
        self.mode = mode
        if mode == "lm":
            self.good_id, self.bad_id = self._single(good_token, "good_token"), self._single(bad_token, "bad_token")
        self.positive_label = positive_label
        self.batch_size = batch_size
        self.max_length = max_length or getattr(model.config, "max_position_embeddings", None)
        self.name = name
        self._newline = list(encode(self.tokenizer, "\n"))

    def _single(self, text: str, field: str) -> int:
        ids = encode(self.tokenizer, text)
        if len(ids) != 1:
            raise ValueError(f"{field} {text!r} must be exactly one token for this tokenizer, got {len(ids)} tokens")
        return ids[0]

    @classmethod
    def from_pretrained(cls, path: str, step_tag: str = " ки", device: str = "auto", **kwargs: Any) -> PRMVerifier:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForTokenClassification

        try:
            archs = AutoConfig.from_pretrained(path).architectures or []
        except OSError as exc:
            raise ValueError(f"cannot load reward model {path!r}: {exc}") from exc
        if any(a.endswith("ForTokenClassification") for a in archs):
            model, tokenizer = _load(path, device, AutoModelForTokenClassification)
            return cls(model, tokenizer, step_tag, mode="token", **kwargs)
        if any(a.endswith("ForCausalLM") for a in archs):
            model, tokenizer = _load(path, device, AutoModelForCausalLM)
            return cls(model, tokenizer, step_tag, mode="lm", **kwargs)
        raise ValueError(f"prm {path!r}: expected a token-classification or causal-LM checkpoint, "
                         f"got architectures {archs or 'none'}")

    def layout(self, c: Candidate) -> tuple[list[int], list[int]]:
        """The input ids and the positions of the step tags in them."""
        ids = list(encode(self.tokenizer, c.question.strip() + "\n"))
        tags: list[int] = []
        steps = c.steps + ([c.answer.strip()] if c.answer.strip() else [])
        for step in steps:
            ids += encode(self.tokenizer, step)
            tags.append(len(ids))
            ids += [self.tag_id, *self._newline]
        if self.max_length and len(ids) > self.max_length:
            cut = len(ids) - self.max_length
            ids, tags = ids[cut:], [t - cut for t in tags if t >= cut]
        return ids, tags

    def score(self, candidates: Sequence[Candidate]) -> list[Scored]:
        out: list[Scored] = []
        for start in range(0, len(candidates), self.batch_size):
            laid = [self.layout(c) for c in candidates[start : start + self.batch_size]]
            ids, mask = _right_padded([r for r, _ in laid], self.tokenizer.pad_token_id, self.model.device)
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
            if self.mode == "lm":
                pair = logits[..., [self.good_id, self.bad_id]]
                probs = torch.softmax(pair, dim=-1)[..., 0]
            else:
                probs = _probabilities(logits, self.positive_label)
            for row, (_, tags) in enumerate(laid):
                out.append(Scored(tuple(float(probs[row, t]) for t in tags)))
        return out
