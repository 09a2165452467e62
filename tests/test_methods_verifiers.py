"""Verifiers: tiny reward models made locally (a random sequence-classification ORM, token-classification
and causal-LM PRMs with the tiny model's tokenizer), an LLM judge behind a mock HTTP transport, and the
policy's own step confidence."""

from __future__ import annotations

import httpx
import pytest
import torch
from transformers import (
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    LlamaForTokenClassification,
)

from s1.methods.verifiers import Candidate, load_verifier, parse_verifier_spec
from s1.methods.verifiers.judge import JudgeVerifier
from s1.methods.verifiers.reward_models import ORMVerifier, PRMVerifier
from s1.models import TINY_MODEL_DIR

CANDIDATES = [
    Candidate("What is 52 + 91?", "Mental math: 52 + 91 = 143.\nSo the answer is 143.", "Final Answer: 143"),
    Candidate("What is 17 + 98?", "Column by column from the right:\n7+8+0=15\n1+9+1=11\nSo the answer is 115.", ""),
    Candidate("What is 60 + 70?", "So the answer is 130.", "Final Answer: 130"),
]


def tiny_reward_model(tmp_path, cls, **config):
    """A random 1-layer Llama reward model with the tiny reasoner's tokenizer, saved and reloadable."""
    tok = AutoTokenizer.from_pretrained(str(TINY_MODEL_DIR))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, **config)
    path = tmp_path / cls.__name__
    cls(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def assert_batch_invariant(verifier, candidates=CANDIDATES):
    together = verifier.score(candidates)
    alone = [verifier.score([c])[0] for c in candidates]
    for a, b in zip(together, alone, strict=True):
        assert a.scores == pytest.approx(b.scores, abs=1e-5)  # padding never changes a score
    return together


def test_orm_scores_each_solution_once_in_0_1(tmp_path):
    verifier = load_verifier(f"orm:{tiny_reward_model(tmp_path, LlamaForSequenceClassification, num_labels=1)}",
                             device="cpu")
    assert isinstance(verifier, ORMVerifier)
    scored = assert_batch_invariant(verifier)
    assert all(len(s.scores) == 1 and 0 < s.scores[0] < 1 and s.error is None for s in scored)
    assert len({s.scores for s in scored}) == 3  # the head really reads the solutions


def test_token_classification_prm_scores_every_step(tmp_path):
    path = tiny_reward_model(tmp_path, LlamaForTokenClassification, num_labels=2)
    verifier = load_verifier(f"prm:{path}", step_tag="#", device="cpu")
    assert isinstance(verifier, PRMVerifier) and verifier.mode == "token"
    scored = assert_batch_invariant(verifier)
    # one score per step, the answer (when there is one) being the last step
    assert [len(s.scores) for s in scored] == [3, 4, 2]
    ids, tags = verifier.layout(CANDIDATES[0])
    assert [ids[t] for t in tags] == [verifier.tag_id] * 3
    model = verifier.model
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor([ids])).logits[0], -1)[:, 1]
    assert scored[0].scores == pytest.approx([float(probs[t]) for t in tags], abs=1e-5)
    with pytest.raises(ValueError, match="step_tag ' ки' must be exactly one token"):
        PRMVerifier.from_pretrained(path, step_tag=" ки", device="cpu")


def test_causal_lm_prm_reads_good_against_bad_at_the_tag(tmp_path):
    path = tiny_reward_model(tmp_path, LlamaForCausalLM)
    verifier = load_verifier(f"prm:{path}", step_tag="#", device="cpu")
    assert verifier.mode == "lm"
    scored = assert_batch_invariant(verifier)
    ids, tags = verifier.layout(CANDIDATES[1])
    with torch.no_grad():
        logits = verifier.model(torch.tensor([ids])).logits[0]
    pair = torch.softmax(logits[:, [verifier.good_id, verifier.bad_id]], -1)[:, 0]
    assert scored[1].scores == pytest.approx([float(pair[t]) for t in tags], abs=1e-5)


def judge_with(reply):
    def handler(request: httpx.Request) -> httpx.Response:
        if reply is None:
            return httpx.Response(500, text="down")
        return httpx.Response(200, json={"choices": [{"message": {"content": reply}}]})

    return JudgeVerifier("http://judge.test/v1", client=httpx.Client(transport=httpx.MockTransport(handler)),
                         max_retries=0)


def test_llm_judge_rating_becomes_a_score_and_failures_are_recorded():
    (ok,) = judge_with("7").score(CANDIDATES[:1])
    assert ok.scores == (0.7,) and ok.error is None
    (bad,) = judge_with("I think it is fine").score(CANDIDATES[:1])
    assert bad.scores == () and "not a rating" in bad.error
    (down,) = judge_with(None).score(CANDIDATES[:1])
    assert down.scores == () and "HTTP 500" in down.error


def test_policy_confidence_flags_a_corrupted_step():
    from s1.backends import load_backend

    backend = load_backend(None, format="s1", device="cpu")
    verifier = load_verifier("confidence", backend)
    right = Candidate("What is 52 + 91?", "Mental math: 52 + 91 = 143.\nSo the answer is 143.")
    wrong = Candidate("What is 52 + 91?", "Mental math: 52 + 91 = 153.\nSo the answer is 153.")
    a, b = assert_batch_invariant(verifier, [right, wrong])
    assert len(a.scores) == 2 and all(0 < s <= 1 for s in a.scores)
    assert b.scores[0] < a.scores[0] - 0.1  # the slip is an unlikely token for the model that learnt sums


@pytest.mark.parametrize(("spec", "message"), [
    ("oracle", "verifier must be one of"), ("orm", "needs an argument"), ("confidence:x", "takes no argument")])
def test_bad_verifier_specs_fail_clearly(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_verifier_spec(spec)
    with pytest.raises(ValueError, match="needs a transformers backend"):
        load_verifier("confidence", backend=None)
