"""Load on `s1 serve`, and the overhead of the `openai` client backend.

Part 1 (server): start `s1 serve` (embedded tiny model) on a loopback port; N concurrent clients
(N = 1, 8, 32) each send chat requests back to back for a fixed time, every request a budget-forced
generation (max_thinking_tokens 32, max_answer_tokens 8, greedy). Columns: requests/s, completion
tokens/s, p50 / p99 latency, and the throughput relative to N = 1 (target: N = 8 >= 3x, i.e. concurrent
requests are batched into the engine rather than served one at a time).

Part 2 (client): the `openai` backend against a fake server that answers instantly (a separate process,
raw asyncio HTTP), each sample two rounds (thinking, then the answer): HTTP requests/s and samples/s
that the client sustains, i.e. its own overhead per request (target >= 500 requests/s).

Part 1 also times streaming: the first reasoning delta of a long streamed generation against the whole
response (deltas leave while the batch decodes).

    python benchmarks/server_load.py                    # both parts, 15 s per concurrency level
    python benchmarks/server_load.py --seconds 5 --part client
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import httpx

QUESTIONS = [f"What is {a} + {b}?" for a, b in [(57, 68), (19, 93), (45, 77), (38, 84), (66, 59), (27, 99),
                                               (73, 48), (91, 35)]]
MODEL = "tiny-reasoner"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with status {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not become healthy")


# -- part 1: s1 serve under load -------------------------------------------------------------------
async def client_loop(http: httpx.AsyncClient, url: str, stop_at: float, worker: int,
                      latencies: list[float], tokens: list[int]) -> None:
    i = worker
    while time.perf_counter() < stop_at:
        body = {"model": MODEL, "temperature": 0, "max_thinking_tokens": 32, "max_answer_tokens": 8,
                "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]}
        began = time.perf_counter()
        r = await http.post(f"{url}/v1/chat/completions", json=body)
        r.raise_for_status()
        latencies.append(time.perf_counter() - began)
        tokens.append(r.json()["usage"]["completion_tokens"])
        i += 1


async def load_level(url: str, clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    tokens: list[int] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=300, limits=limits) as http:
        began = time.perf_counter()
        await asyncio.gather(*(client_loop(http, url, began + seconds, w, latencies, tokens) for w in range(clients)))
        wall = time.perf_counter() - began
    latencies.sort()
    return {"clients": clients, "requests": len(latencies), "req_s": len(latencies) / wall,
            "tok_s": sum(tokens) / wall, "p50": statistics.median(latencies),
            "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]}


def server_part(seconds: float, levels: list[int], threads: int) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.Popen([sys.executable, "-m", "s1.cli", "serve", "--port", str(port), "--device", "cpu",
                             "--batch-size", "32", "--log-level", "warning"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(url, proc)
        for n in levels:  # warm up every batch shape once
            asyncio.run(load_level(url, n, 0.01))
        print(f"s1 serve (tiny model, {threads} math thread(s)), chat requests max_thinking_tokens=32, "
              f"max_answer_tokens=8, {seconds:.0f} s per level")
        print(f"{'clients':>7} {'requests':>8} {'req/s':>8} {'tok/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs N=1':>7}")
        base = None
        for n in levels:
            row = asyncio.run(load_level(url, n, seconds))
            base = base or row["req_s"]
            print(f"{n:>7} {row['requests']:>8} {row['req_s']:>8.1f} {row['tok_s']:>8.0f} {row['p50'] * 1e3:>8.0f} "
                  f"{row['p99'] * 1e3:>8.0f} {row['req_s'] / base:>6.1f}x", flush=True)
        stream_latency(url, repeats=5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def stream_latency(url: str, repeats: int) -> None:
    """One client, a long forced generation (two Waits: ~130 thinking tokens): the time to the first
    reasoning delta of a stream against the time to a whole (non-streamed) response."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": QUESTIONS[0]}], "temperature": 0,
            "num_ignore": 2, "max_answer_tokens": 8}
    whole, first, end = [], [], []
    with httpx.Client(timeout=120) as http:
        for _ in range(repeats):
            start = time.perf_counter()
            http.post(f"{url}/v1/chat/completions", json=body).raise_for_status()
            whole.append(time.perf_counter() - start)
            start, got = time.perf_counter(), None
            with http.stream("POST", f"{url}/v1/chat/completions", json={**body, "stream": True}) as r:
                for line in r.iter_lines():
                    if got is None and '"reasoning_content"' in line:
                        got = time.perf_counter() - start
            first.append(got)
            end.append(time.perf_counter() - start)
    w, f, e = (statistics.median(x) * 1e3 for x in (whole, first, end))
    print(f"\nstreaming, one client, num_ignore=2 (median of {repeats}): first reasoning delta {f:.0f} ms, "
          f"stream end {e:.0f} ms, whole response {w:.0f} ms; first delta / whole = {f / w:.2f}")


# -- part 2: the client backend against an instant fake server --------------------------------------
THINK_IDS = [104, 135, 136, 137, 130, 138, 29, 98, 103, 130, 132, 131, 3, 20, 20, 22, 17, 98]  # tiny-model ids
ANSWER_IDS = [3, 20, 20, 22]


def fake_reply(body: dict) -> dict:
    """Thinking rounds end on the closer's first token (id 1), answer rounds on <|im_end|> (id 2)."""
    prompt = body.get("prompt") or []
    answering = 102 in prompt[-8:]  # the forced closer "<|im_start|>answer" is in the context
    ids = [*ANSWER_IDS, 2] if answering else [*THINK_IDS, 1]
    choice = {"index": 0, "text": "", "token_ids": ids, "finish_reason": "stop", "stop_reason": ids[-1]}
    return {"choices": [choice], "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(ids)}}


async def fake_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = json.loads(await reader.readexactly(length)) if length else {}
            data = json.dumps(fake_reply(body)).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(data)).encode() + b"\r\n\r\n" + data)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionResetError):
        writer.close()


def run_fake(port: int) -> None:
    async def main() -> None:
        server = await asyncio.start_server(fake_connection, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def client_part(samples: int, concurrency: int) -> None:
    from s1.backends.openai.backend import OpenAIBackend
    from s1.forcing.policy import BudgetPolicy
    from s1.forcing.request import Request
    from s1.models import TINY_MODEL_DIR

    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--fake-server", str(port)])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        backend = OpenAIBackend(f"http://127.0.0.1:{port}/v1", model="fake", format="s1",
                                tokenizer=str(TINY_MODEL_DIR), api="completions", context_length=4096,
                                concurrency=concurrency).connect()
        policy = BudgetPolicy(max_thinking_tokens=64, max_answer_tokens=8)
        requests = [Request(f"q{i}", messages=QUESTIONS[i % len(QUESTIONS)]) for i in range(samples)]
        backend.generate(requests[:concurrency], policy)  # warm up connections
        calls = backend.client.calls
        began = time.perf_counter()
        gens = backend.generate(requests, policy)
        wall = time.perf_counter() - began
        calls = backend.client.calls - calls
        failed = sum(g.error is not None for g in gens)
        print(f"\nopenai client backend vs an instant fake server: {samples} samples, concurrency {concurrency}, "
              f"local tokenizer")
        print(f"  {calls} HTTP requests in {wall:.2f} s: {calls / wall:.0f} requests/s, {samples / wall:.0f} "
              f"samples/s, {failed} failed")
        backend.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["both", "server", "client"], default="both")
    parser.add_argument("--seconds", type=float, default=15.0, help="measuring time per concurrency level")
    parser.add_argument("--levels", default="1,8,32", help="client counts for the server part")
    parser.add_argument("--server-threads", type=int, default=1, help="OMP threads of the server process")
    parser.add_argument("--samples", type=int, default=2000, help="samples for the client part")
    parser.add_argument("--concurrency", type=int, default=64, help="client backend concurrency")
    parser.add_argument("--fake-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake_server:
        run_fake(args.fake_server)
        return
    if args.part in ("both", "server"):
        server_part(args.seconds, [int(n) for n in args.levels.split(",")], args.server_threads)
    if args.part in ("both", "client"):
        client_part(args.samples, args.concurrency)


if __name__ == "__main__":
    main()
