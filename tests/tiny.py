"""Tiny, locally built models for mechanics tests: a real `tokenizers` BPE tokenizer with a ChatML
chat template, and random Qwen2 / Llama weights from a config. No download."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
CHATML_S1 = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CORPUS = [
    "Let me think step by step about this problem.",
    "First add the ones digits, then carry the one. Wait, let me check again.",
    "The answer is 42. Final Answer: 42. So the total is 17 apples and 3 pears.",
    "How many r are in raspberry? r a s p b e r r y: three.",
    "Sort the list 5 3 9 1 into 1 3 5 9.\nDone.\n",
    "Maybe I made a mistake. Did I make a mistake in any step of the previous reasoning?",
    "Let me check if all the intermediate results are correct. I need to think more and check again.",
    "I need to check if I missed any step in my previous thinking.",
    "answer think user assistant system 0 1 2 3 4 5 6 7 8 9 + - * / = ( ) , . : ? !",
] * 5


def build_tokenizer(vocab_size: int = 300, think_tokens: bool = False) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on a small corpus. `think_tokens` makes <think>/</think> added tokens."""
    specials = SPECIALS if think_tokens else SPECIALS[:3]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=specials[1:])
    fast.chat_template = CHATML_S1
    return fast


def build_model(tokenizer, arch: str = "qwen2", seed: int = 0, pad_vocab_to: int = 64):
    """Random weights; the embedding is padded past the tokenizer (as real checkpoints are)."""
    torch.manual_seed(seed)
    vocab = ((len(tokenizer) + pad_vocab_to - 1) // pad_vocab_to) * pad_vocab_to + pad_vocab_to
    common = dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                  tie_word_embeddings=False)
    if arch == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    elif arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    else:
        raise ValueError(arch)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.eval()


def save_tiny(path: Path, arch: str = "qwen2", think_tokens: bool = False) -> Path:
    tok = build_tokenizer(think_tokens=think_tokens)
    model = build_model(tok, arch)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
