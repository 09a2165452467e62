"""A pad token that is never the EOS token.

When pad == EOS, any collator or loss that masks by token id also masks the EOS at the end of each
completion, and the model never learns to stop (the classic "pad_token = eos_token" bug). So training
picks a distinct pad token: the tokenizer's own if it differs from EOS, else an unused special token the
model family reserves for it (Qwen's `<|fim_pad|>`, which s1 used; Llama 3's
`<|finetune_right_pad_id|>`), else a new `<|pad|>` with the embedding resized to fit.
"""

from __future__ import annotations

from typing import Any

RESERVED_PADS = ("<|fim_pad|>", "<|finetune_right_pad_id|>", "<|pad|>", "<pad>", "[PAD]", "<|endoftext|>")
NEW_PAD = "<|pad|>"


def ensure_pad_token(tokenizer: Any, model: Any = None, prefer: str | None = None) -> str:
    """Give `tokenizer` a pad token distinct from EOS (and tell `model`); returns the pad token. `prefer`
    (a recipe's own, e.g. s1's `<|fim_pad|>` for Qwen) is taken when the vocabulary has it."""
    eos_id = tokenizer.eos_token_id
    if eos_id is None:
        raise ValueError("the tokenizer has no eos_token; set one (the end of the assistant turn) before training")
    vocab_ids = tokenizer.get_vocab() if prefer is not None else {}
    if prefer is not None and prefer in vocab_ids and vocab_ids[prefer] != eos_id:
        tokenizer.pad_token = prefer
    elif tokenizer.pad_token_id is None or tokenizer.pad_token_id == eos_id:
        vocab = tokenizer.get_vocab()
        choice = next((t for t in RESERVED_PADS if t in vocab and vocab[t] != eos_id), None)
        if choice is None:
            tokenizer.add_special_tokens({"pad_token": NEW_PAD})
        else:
            tokenizer.pad_token = choice
    if model is not None:
        embeddings = model.get_input_embeddings()
        if embeddings is not None and embeddings.num_embeddings < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer))
        for config in (model.config, getattr(model, "generation_config", None)):
            if config is not None:
                config.pad_token_id = tokenizer.pad_token_id
    return tokenizer.pad_token
