"""The policy's own confidence as a process verifier: no reward model needed.

A step's score is the geometric mean of the probabilities the policy model gave its tokens
(exp of the mean log-probability), read in one forward pass over the prompt and the thinking.
Sampled mistakes are usually unlikely tokens, so a low score flags them; it cannot flag a mistake
the model makes confidently (a trained PRM can).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from s1.forcing.binding import encode
from s1.forcing.formats import ReasoningFormat
from s1.methods.verifiers.base import Candidate, Scored


class ConfidenceVerifier:
    """Scores each thinking step by the policy's mean token log-probability, exponentiated."""

    name = "confidence"

    def __init__(self, model: Any, tokenizer: Any, fmt: ReasoningFormat, batch_size: int = 32):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.format = fmt
        self.batch_size = batch_size
        self._prompts: dict[str, list[int]] = {}

    def _prompt(self, question: str) -> list[int]:
        if question not in self._prompts:
            text = self.format.render_prompt(self.tokenizer, question)
            self._prompts[question] = list(encode(self.tokenizer, text))
        return self._prompts[question]

    def layout(self, c: Candidate) -> tuple[list[int], list[tuple[int, int]]]:
        """Input ids (prompt, then each step with its separator) and each step's [start, end) span."""
        ids = list(self._prompt(c.question))
        spans = []
        for step in c.steps:
            piece = encode(self.tokenizer, step + c.separator)
            spans.append((len(ids), len(ids) + len(piece)))
            ids += piece
        return ids, spans

    def score(self, candidates: Sequence[Candidate]) -> list[Scored]:
        out: list[Scored] = []
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        device = next(self.model.parameters()).device
        for start in range(0, len(candidates), self.batch_size):
            laid = [self.layout(c) for c in candidates[start : start + self.batch_size]]
            width = max(len(ids) for ids, _ in laid)
            ids = torch.full((len(laid), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, (r, _) in enumerate(laid):
                ids[row, : len(r)] = torch.tensor(r, dtype=torch.long)
                mask[row, : len(r)] = 1
            with torch.inference_mode():
                logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].to(device).unsqueeze(-1))[..., 0]
            for row, (_, spans) in enumerate(laid):
                # token t is predicted at position t - 1
                out.append(Scored(tuple(math.exp(float(logp[row, a - 1 : b - 1].mean())) for a, b in spans)))
        return out
