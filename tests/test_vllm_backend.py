"""The vLLM backend on this CPU (vllm-cpu) with the shipped tiny reasoning model: under greedy decoding its
tokens equal the transformers backend's, counts are exact, requests of different policies share engine
steps, requests joining / leaving / chunk-prefilled mid-batch keep their own state, sweeps and the
multi-round path agree. Skipped where vLLM is not installed (run scripts/test_vllm.sh)."""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here; run scripts/test_vllm.sh")

# Small, fast and polite on a shared CPU (read when the engine starts).
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from s1.backends.hf.backend import HFBackend
from s1.backends.vllm.backend import VLLMBackend, engine_options, make_llm, replay
from s1.forcing.formats import custom_format
from s1.forcing.policy import BudgetPolicy, PolicyError, SamplingSettings
from s1.forcing.request import Request
from s1.forcing.sweep import run_sweep
from s1.models import TINY_MODEL_DIR  # noqa: E402

QUESTIONS = ["What is 47+58?", "What is 36+75?", "What is 12+99?", "What is 88+14?", "What is 59+63?",
             "What is 27+96?"]
FIELDS = ("token_ids", "thinking_tokens", "thinking_forced_tokens", "answer_tokens", "answer_forced_tokens",
          "ignores_applied", "cap_hit", "thinking_closed", "finish_reason", "thinking", "answer")
POLICIES = [
    BudgetPolicy(max_thinking_tokens=0, max_answer_tokens=6),
    BudgetPolicy(max_thinking_tokens=12, max_answer_tokens=6),
    BudgetPolicy(max_thinking_tokens=120, max_answer_tokens=8),
    BudgetPolicy(max_thinking_tokens=120, num_ignore=1, max_answer_tokens=8),
    BudgetPolicy(max_thinking_tokens=150, num_ignore=2, max_answer_tokens=8),
    BudgetPolicy(max_thinking_tokens=120, min_thinking_tokens=45, max_answer_tokens=8),
    BudgetPolicy(max_thinking_tokens=120, min_thinking_tokens=45, min_thinking_mode="wait", max_answer_tokens=8),
    BudgetPolicy(max_thinking_tokens=60, num_ignore=2, ignore_strings=("Wait", "Hmm"), max_answer_tokens=8),
]


def reqs(n: int = len(QUESTIONS)) -> list[Request]:
    return [Request(f"q{i}", messages=q) for i, q in enumerate(QUESTIONS[:n])]


def facts(g) -> tuple:
    assert g.error is None, g.error
    return tuple(getattr(g, f) for f in FIELDS)


@pytest.fixture(scope="module")
def llm():
    # Few sequences and a small token budget per step: requests join and leave mid-batch, and prompts
    # are prefilled in chunks (whose sampled tokens vLLM discards), on every test.
    engine = make_llm(str(TINY_MODEL_DIR), max_num_batched_tokens=24, block_size=32,
                      **engine_options(dtype="float32", max_model_len=512, max_num_seqs=4, enforce_eager=True))
    yield engine
    engine.llm_engine.engine_core.shutdown()


@pytest.fixture(scope="module")
def vllm_backend(llm):
    return VLLMBackend(llm, format="s1")


@pytest.fixture(scope="module")
def hf_backend():
    return HFBackend.from_pretrained(str(TINY_MODEL_DIR), device="cpu", dtype="float32", format="s1")


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.label())
def test_greedy_tokens_equal_the_transformers_backend(vllm_backend, hf_backend, policy):
    ours = vllm_backend.generate(reqs(), policy)
    theirs = hf_backend.generate(reqs(), policy)
    assert [facts(g) for g in ours] == [facts(g) for g in theirs]
    assert [[s.kind for s in g.segments] for g in ours] == [[s.kind for s in g.segments] for g in theirs]
    assert all(g.backend == "vllm:single" for g in ours)


def test_ignores_are_applied_and_counted_separately(vllm_backend):
    base, extended = (vllm_backend.generate(reqs(3), BudgetPolicy(max_thinking_tokens=150, num_ignore=k,
                                                                  max_answer_tokens=8)) for k in (0, 2))
    for b, e in zip(base, extended, strict=True):
        assert e.ignores_applied == 2 and e.thinking_forced_tokens == 2  # "Wait" is one token here
        assert e.thinking_tokens > b.thinking_tokens
        assert [s.text for s in e.segments if s.kind == "ignore"] == ["Wait", "Wait"]


@pytest.mark.parametrize("budget", [0, 1, 7, 90])
def test_the_cap_gives_exactly_the_budget_then_the_cap_string(vllm_backend, budget):
    policy = BudgetPolicy(max_thinking_tokens=budget, num_ignore=9, max_answer_tokens=5)  # ignores: never ends early
    for g in vllm_backend.generate(reqs(3), policy):
        assert g.thinking_tokens == budget and g.cap_hit and g.thinking_budget == budget
        cap = next(s for s in g.segments if s.kind == "cap")
        assert cap.text in ("\n<|im_start|>answer\nFinal Answer:", "<|im_start|>answer\nFinal Answer:")
        assert g.answer.startswith("Final Answer:")
        assert g.answer_tokens <= 5 and (g.finish_reason == "length") == (g.answer_tokens == 5)
        assert len(g.token_ids) == g.thinking_tokens + g.forced_tokens + g.answer_tokens + 1  # + the end token


def test_requests_with_different_policies_share_engine_steps(vllm_backend, hf_backend):
    mixed = [Request(r.id, messages=r.messages, policy=POLICIES[i % len(POLICIES)]) for i, r in enumerate(reqs())]
    together = vllm_backend.generate(mixed)
    alone = [hf_backend.generate([r])[0] for r in mixed]
    assert [facts(g) for g in together] == [facts(g) for g in alone]
    assert [g.setting for g in together] == [r.policy.label() for r in mixed]


def test_a_request_added_and_one_removed_mid_batch_keep_their_own_state(llm, vllm_backend, hf_backend):
    """Drive the engine step by step: B is aborted while A thinks, C joins later; A and C must equal
    independent runs (no state leaks between requests or batch slots)."""
    policy_a = BudgetPolicy(max_thinking_tokens=150, num_ignore=2, max_answer_tokens=8)
    policy_c = BudgetPolicy(max_thinking_tokens=20, max_answer_tokens=6)
    a, b, c = (vllm_backend.start(r, p) for r, p in zip(reqs(3), (policy_a, policy_a, policy_c), strict=True))
    engine = llm.llm_engine
    done: dict[str, list[int]] = {}

    def run(steps: int | None) -> None:
        n = 0
        while engine.has_unfinished_requests() and (steps is None or n < steps):
            for out in engine.step():
                if out.finished:
                    done[out.request_id] = list(out.outputs[0].token_ids)
            n += 1

    for name, s in (("a", a), ("b", b)):
        engine.add_request(name, {"prompt_token_ids": s.prompt_ids}, vllm_backend._forcing_params(s, s.limit))
    run(12)
    engine.abort_request(["b"])
    run(5)
    engine.add_request("c", {"prompt_token_ids": c.prompt_ids}, vllm_backend._forcing_params(c, c.limit))
    run(None)
    reports = vllm_backend._reports([a, b, c])
    for name, s in (("a", a), ("c", c)):
        s.emitted = replay(s.machine, done[name], reports.get(s.key, {}))
    assert "b" not in done
    expected = [hf_backend.generate([r], p)[0] for r, p in zip(reqs(3), (policy_a, policy_a, policy_c), strict=True)]
    assert [facts(vllm_backend.record(s)) for s in (a, c)] == [facts(expected[0]), facts(expected[2])]
    assert a.machine.ignores_applied == 2


def test_sampling_uses_each_requests_own_seeded_stream(vllm_backend):
    policy = BudgetPolicy(max_thinking_tokens=40, max_answer_tokens=6,
                          thinking=SamplingSettings(temperature=1.0, top_p=0.95, seed=3))
    samples = [Request("q", messages=QUESTIONS[0], sample_index=k) for k in range(4)]
    batched = vllm_backend.generate(samples, policy)
    alone = [vllm_backend.generate([r], policy)[0] for r in samples]
    assert [g.token_ids for g in batched] == [g.token_ids for g in alone]
    assert len({tuple(g.token_ids) for g in batched}) > 1


def test_multi_round_equals_the_single_pass(llm, vllm_backend):
    multi = VLLMBackend(llm, format="s1", mode="multi")
    for policy in (POLICIES[1], POLICIES[4], POLICIES[5], POLICIES[6]):
        one = vllm_backend.generate(reqs(4), policy)
        rounds = multi.generate(reqs(4), policy)
        assert [facts(g) for g in one] == [facts(g) for g in rounds]
        assert all(g.backend == "vllm:multi" for g in rounds)


def test_a_multi_token_closer_runs_in_rounds_like_the_transformers_backend(llm, hf_backend):
    """A plain-text closer (several tokens) cannot be caught before it is emitted: rounds stop at its text."""
    fmt = custom_format("<|im_start|>think\n", "So the answer is", cap="\nSo the answer is")
    ours = VLLMBackend(llm, format=fmt)
    theirs = HFBackend(hf_backend.model, hf_backend.tokenizer, format=fmt)
    assert not ours.single_pass
    policy = BudgetPolicy(max_thinking_tokens=120, num_ignore=1, max_answer_tokens=8)
    a, b = ours.generate(reqs(4), policy), theirs.generate(reqs(4), policy)
    assert [facts(g) for g in a] == [facts(g) for g in b]
    assert any(g.ignores_applied for g in a)


def test_a_sweep_equals_independent_runs_and_reuses_the_prefix_cache(vllm_backend):
    settings = [BudgetPolicy(max_thinking_tokens=b, num_ignore=k, max_answer_tokens=6)
                for b in (10, 150) for k in (0, 2)]
    before = vllm_backend.reused_cache_tokens
    swept = run_sweep(vllm_backend, reqs(3), settings).generations
    assert vllm_backend.reused_cache_tokens > before
    independent = {s.label(): vllm_backend.generate(reqs(3), s) for s in settings}
    assert [facts(g) for g in swept] == [facts(independent[s.label()][i]) for i in range(3) for s in settings]
    assert [g.setting for g in swept] == [s.label() for _ in range(3) for s in settings]


def test_requests_without_forcing_settings_pass_through_untouched(llm):
    from vllm import SamplingParams

    out = llm.generate([{"prompt_token_ids": [1, 5, 9, 20]}], SamplingParams(temperature=0, max_tokens=7,
                                                                            ignore_eos=True), use_tqdm=False)
    assert len(out[0].outputs[0].token_ids) == 7


def test_a_request_that_cannot_fit_is_recorded_as_failed_not_dropped(vllm_backend):
    gens = vllm_backend.generate(reqs(2), BudgetPolicy(max_thinking_tokens=600, max_answer_tokens=8))
    assert len(gens) == 2 and all(g.error and "context length" in g.error for g in gens)
    assert all(g.finish_reason == "error" for g in gens)


def test_bad_engine_options_name_the_field(llm):
    for kwargs, field in ((dict(dtype="fp8"), "dtype"), (dict(tensor_parallel_size=0), "tensor_parallel_size"),
                          (dict(gpu_memory_utilization=1.5), "gpu_memory_utilization"),
                          (dict(max_model_len=0), "max_model_len"), (dict(data_parallel_size=2), "data_parallel_size")):
        with pytest.raises(ValueError, match=field):
            engine_options(**kwargs)
    with pytest.raises(ValueError, match="mode"):
        VLLMBackend(llm, format="s1", mode="fast")
    with pytest.raises(PolicyError):
        BudgetPolicy(max_thinking_tokens=-1)


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_s1_serve_streams_the_vllm_backend(llm, mode):
    """`s1 serve --backend vllm`: a stream's deltas add up to the whole response (a single pass shows its
    tokens when the engine returns them; rounds show each round's)."""
    import httpx
    from serving import serving

    body = {"messages": [{"role": "user", "content": QUESTIONS[1]}], "temperature": 0, "num_ignore": 1,
            "max_thinking_tokens": 120, "max_answer_tokens": 8}
    with serving(VLLMBackend(llm, format="s1", mode=mode)) as url:
        whole = httpx.post(f"{url}/chat/completions", json=body, timeout=120).json()["choices"][0]
        reasoning = content = ""
        with httpx.stream("POST", f"{url}/chat/completions", json={**body, "stream": True}, timeout=120) as r:
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    for c in json.loads(line[len("data: "):])["choices"]:
                        reasoning += c["delta"].get("reasoning_content") or ""
                        content += c["delta"].get("content") or ""
    assert whole["s1"]["ignores_applied"] == 1
    assert reasoning == whole["message"]["reasoning_content"] and content == whole["message"]["content"]


# Keep last: the CLI starts its own engine in this process, and its shutdown tears down vLLM's global
# parallel state that the module's engine (`llm`) relies on.
def test_the_cli_generates_with_the_vllm_backend():
    from typer.testing import CliRunner

    from s1.cli import app

    result = CliRunner().invoke(app, ["generate", "--backend", "vllm", "--prompt", QUESTIONS[0], "--num-ignore", "1",
                                      "--max-thinking-tokens", "150", "--max-model-len", "512", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["backend"] == "vllm:single" and record["ignores_applied"] == 1
    assert record["answer"].startswith("Final Answer:")

