"""The run store: nothing lost, nothing duplicated, across kills, resumes and threads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

import pytest

from s1.eval.store import (
    GRADING_FIELDS,
    ManifestMismatchError,
    RecordKey,
    RunExistsError,
    RunStore,
    RunStoreError,
    SampleRecord,
    file_sha256,
    items_hash,
)
from s1.records import Generation, Segment

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = {
    "model": "tiny",
    "backend": "hf",
    "tasks": ["synthetic"],
    "parameters": {"max_thinking_tokens": 64, "temperature": 0.0, "num_ignore": 0},
    "seeds": [0],
    "datasets": {"synthetic": "abc"},
    "runtime": {"batch_size": 4},
}


def record(pid: str, i: int = 0, setting: str = "s", task: str = "t", text: str = "", correct: bool = True):
    gen = Generation(pid, sample_index=i, setting=setting, thinking=text, answer="42", text=text + "42",
                     thinking_tokens=len(text), token_ids=[1, 2, 3], segments=[Segment("think", text, len(text))])
    return SampleRecord(task, gen, correct=correct, extracted="42", reason="match", gold="42")


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def keys_in_file(run_dir: Path) -> Counter:
    return Counter(
        RecordKey(d["task"], d["prompt_id"], d["sample_index"], d["setting"])
        for d in lines_of(run_dir / "samples.jsonl")
    )


# -- records --------------------------------------------------------------------------------------------


def test_sample_record_round_trip_and_generation_from_line():
    rec = record("p1", 2, "b64", text="think")
    data = json.loads(rec.to_json())
    assert data["task"] == "t" and data["correct"] is True and data["gold"] == "42"
    assert SampleRecord.from_dict(data) == rec
    gen_only = {k: v for k, v in data.items() if k not in ("task", *GRADING_FIELDS)}
    assert Generation.from_dict(gen_only) == rec.generation
    assert rec.key == RecordKey("t", "p1", 2, "b64")


def test_a_record_written_before_the_setting_fields_gets_them_from_its_label(tmp_path):
    """Run files from before records carried the setting's fields still load, and a report groups them
    by the fields parsed from the label (the minimum thinking part included)."""
    from s1.eval.report import summarize

    old = json.loads(record("p1", setting="think<=64,min20:wait,ignore1").to_json())
    for name in ("max_thinking_tokens", "num_ignore", "min_thinking_tokens", "min_thinking_mode"):
        del old[name]
    auto = {**old, "prompt_id": "p2", "setting": "think<=auto"}
    store = RunStore.create(tmp_path / "run", MANIFEST)
    with open(store.samples_path, "a", encoding="utf-8") as f:
        f.write(json.dumps(old) + "\n" + json.dumps(auto) + "\n")
    store.close()
    records = list(RunStore.open(tmp_path / "run", read_only=True).records())
    fields = [r.generation.setting_fields for r in records]
    assert fields[0] == (64, 1, 20, "wait") and fields[1] == ("auto", 0, 0, "suppress")
    assert [(row.budget, row.num_ignore) for row in summarize(records)] == [(64, 1), (None, 0)]


# -- manifest -------------------------------------------------------------------------------------------


def test_create_writes_the_manifest(tmp_path):
    run = tmp_path / "run"
    with RunStore.create(run, MANIFEST) as store:
        m = json.loads((run / "manifest.json").read_text())
        assert m == store.manifest
        assert m["status"] == "running" and m["finished"] is None and m["created"] and m["updated"]
        assert m["s1_version"]
        assert set(m["versions"]) >= {"python", "torch", "transformers"}
        assert m["model"] == "tiny" and m["parameters"]["temperature"] == 0.0
        store.finish()
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "finished" and m["finished"]
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_create_refuses_store_managed_keys(tmp_path):
    with pytest.raises(ValueError, match="status"):
        RunStore.create(tmp_path / "r", {**MANIFEST, "status": "x"})


def test_existing_run_without_resume_is_an_error(tmp_path):
    RunStore.create(tmp_path, MANIFEST).close()
    with pytest.raises(RunExistsError, match="pass --resume or choose another --output"):
        RunStore.open_or_create(tmp_path, MANIFEST, resume=False)
    with pytest.raises(RunExistsError):
        RunStore.create(tmp_path, MANIFEST)


def test_resume_with_a_different_manifest_names_the_keys(tmp_path):
    RunStore.create(tmp_path, MANIFEST).close()
    changed = {**MANIFEST, "model": "other", "parameters": {**MANIFEST["parameters"], "temperature": 0.6},
               "runtime": {"batch_size": 64}}  # runtime is not part of the identity
    with pytest.raises(ManifestMismatchError) as err:
        RunStore.open_or_create(tmp_path, changed, resume=True)
    assert err.value.differing == ["model", "parameters.temperature"]
    assert "model" in str(err.value) and "parameters.temperature" in str(err.value)
    dropped = {k: v for k, v in MANIFEST.items() if k != "seeds"}
    with pytest.raises(ManifestMismatchError, match="seeds"):
        RunStore.open_or_create(tmp_path, dropped, resume=True)
    # tuples compare equal to the lists JSON stores
    same = {**MANIFEST, "tasks": ("synthetic",), "runtime": {"batch_size": 64}}
    with RunStore.open_or_create(tmp_path, same, resume=True) as store:
        assert store.manifest["status"] == "running" and len(store.manifest["resumes"]) == 1


def test_resume_without_a_run_creates_one(tmp_path):
    with RunStore.open_or_create(tmp_path / "new", MANIFEST, resume=True) as store:
        assert store.manifest["model"] == "tiny"


def test_open_without_manifest_is_an_error(tmp_path):
    with pytest.raises(RunStoreError, match="manifest.json is missing"):
        RunStore.open(tmp_path)


def test_one_writer_per_run(tmp_path):
    with RunStore.create(tmp_path, MANIFEST):
        with pytest.raises(RunStoreError, match="in use by another process"):
            RunStore.open(tmp_path)
        with RunStore.open(tmp_path, read_only=True) as reader:  # readers are fine
            assert reader.done_keys() == set()
    RunStore.open(tmp_path).close()  # released on close


def test_hash_helpers(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_bytes(b"abc")
    assert file_sha256(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    items = [("1", "What is 1+1?", "2"), (2, "Capital of France?", ["Paris"])]
    assert items_hash(items) == items_hash(list(reversed(items)))  # a set of items, not an order
    assert items_hash(items) != items_hash([("1", "What is 1+1?", "3"), items[1]])
    assert len(items_hash([])) == 64


# -- samples --------------------------------------------------------------------------------------------


def test_append_records_done_and_pending(tmp_path):
    with RunStore.create(tmp_path, MANIFEST) as store:
        store.append(record("p1"))
        store.append([record("p2"), record("p2", 1)])
        assert store.done_keys() == {("t", "p1", 0, "s"), ("t", "p2", 0, "s"), ("t", "p2", 1, "s")}
        todo = [("t", "p1", 0, "s"), ("t", "p3", 0, "s"), ("t", "p2", 2, "s"), ("t", "p3", 0, "s")]
        assert store.pending(todo) == [RecordKey("t", "p3", 0, "s"), RecordKey("t", "p2", 2, "s")]
        assert [r.key.prompt_id for r in store.records()] == ["p1", "p2", "p2"]
        assert len(store) == 3
        with pytest.raises(ValueError, match="already stored"):
            store.append(record("p1"))
        with pytest.raises(ValueError, match="already stored"):  # a duplicate within a batch: nothing written
            store.append([record("p4"), record("p4")])
        assert len(store) == 3
    with RunStore.open(tmp_path, read_only=True) as reader:
        assert [r.generation.prompt_id for r in reader.records()] == ["p1", "p2", "p2"]
        with pytest.raises(RunStoreError, match="read-only"):
            reader.append(record("p9"))


def test_deliberately_torn_last_line_is_cut_and_redone(tmp_path):
    with RunStore.create(tmp_path, MANIFEST) as store:
        store.append([record("p1"), record("p2")])
    samples = tmp_path / "samples.jsonl"
    full = record("p3").to_json().encode()
    with open(samples, "ab") as f:
        f.write(full[: len(full) // 2])  # a kill mid-write
    with pytest.warns(UserWarning, match="unfinished last line"):
        store = RunStore.open_or_create(tmp_path, MANIFEST, resume=True)
    with store:
        assert samples.read_bytes().endswith(b"}\n")
        assert store.pending([("t", f"p{i}", 0, "s") for i in (1, 2, 3)]) == [RecordKey("t", "p3", 0, "s")]
        store.append(record("p3"))
    assert keys_in_file(tmp_path) == Counter({RecordKey("t", f"p{i}", 0, "s"): 1 for i in (1, 2, 3)})


def test_unreadable_final_line_with_newline_is_cut_too(tmp_path):
    with RunStore.create(tmp_path, MANIFEST) as store:
        store.append(record("p1"))
    with open(tmp_path / "samples.jsonl", "ab") as f:
        f.write(b"\x00\x00\x00\n")  # blocks a crash left unwritten
    with pytest.warns(UserWarning, match="unfinished"), RunStore.open(tmp_path) as store:
        assert store.done_keys() == {("t", "p1", 0, "s")}
    assert len(lines_of(tmp_path / "samples.jsonl")) == 1


def test_duplicate_keys_in_the_file_keep_the_last(tmp_path):
    with RunStore.create(tmp_path, MANIFEST) as store:
        store.append([record("p1", correct=False), record("p2")])
    with open(tmp_path / "samples.jsonl", "a") as f:  # should not happen; simulate it
        f.write(record("p1", correct=True).to_json() + "\n")
    with RunStore.open(tmp_path, read_only=True) as reader, pytest.warns(UserWarning, match="more than once"):
        got = {r.key.prompt_id: r.correct for r in reader.records()}
    assert got == {"p1": True, "p2": True}


def test_unreadable_middle_line_is_skipped_with_a_warning(tmp_path):
    with RunStore.create(tmp_path, MANIFEST) as store:
        store.append(record("p1"))
    with open(tmp_path / "samples.jsonl", "a") as f:
        f.write("not json\n" + record("p2").to_json() + "\n")
    with pytest.warns(UserWarning, match="unreadable line"), RunStore.open(tmp_path) as store:
        assert store.done_keys() == {("t", "p1", 0, "s"), ("t", "p2", 0, "s")}


class _FailingFile:
    """Writes half of what it is given, then fails (a full disk)."""

    def __init__(self, real):
        self.real = real

    def write(self, data: bytes) -> int:
        self.real.write(data[: len(data) // 2])
        self.real.flush()
        raise OSError(28, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_failed_write_leaves_no_half_line(tmp_path):
    with RunStore.create(tmp_path, MANIFEST) as store:
        store.append(record("p1"))
        store._fh = _FailingFile(store._fh)
        with pytest.raises(OSError, match="No space"):
            store.append([record("p2"), record("p3")])
        store.append(record("p2"))  # the store carries on, the failed batch not stored
        assert store.done_keys() == {("t", "p1", 0, "s"), ("t", "p2", 0, "s")}
    assert [d["prompt_id"] for d in lines_of(tmp_path / "samples.jsonl")] == ["p1", "p2"]


def test_concurrent_appends_do_not_interleave(tmp_path):
    big = "x" * 70_000  # lines larger than any pipe/page buffer
    with RunStore.create(tmp_path, MANIFEST) as store:

        def work(t: int) -> None:
            for i in range(15):
                store.append(record(f"w{t}", i, text=big if i % 3 == 0 else f"small {t} {i}"))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    counts = keys_in_file(tmp_path)  # every line parses
    assert len(counts) == 90 and set(counts.values()) == {1}


# -- a real kill ----------------------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    from s1.records import Generation
    from s1.eval.store import RunStore
    from s1.records import SampleRecord

    run_dir, total, torn_after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    manifest = json.loads(sys.argv[4])
    gen = lambda key: Generation(key.prompt_id, key.sample_index, key.setting, text="y" * 5000)  # noqa: E731
    store = RunStore.open_or_create(run_dir, manifest, resume=True)
    todo = store.pending([("t", f"p{i}", 0, "s") for i in range(total)])
    for n, key in enumerate(todo):
        if n == torn_after:
            line = SampleRecord(key.task, gen(key)).to_json()
            os.write(store._fh.fileno(), line[: len(line) // 2].encode())  # killed in the middle of this line
            print("TORN", flush=True)
            time.sleep(60)
        store.append(SampleRecord(key.task, gen(key), correct=True))
        time.sleep(0.01)
    print("DONE", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("torn", [False, True], ids=["between-lines", "mid-line"])
def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path, torn):
    total = 60
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(run_dir), str(total), "20" if torn else "-1", json.dumps(MANIFEST)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        samples = run_dir / "samples.jsonl"
        if torn:
            assert proc.stdout.readline().strip() == "TORN"
        else:  # kill it while it is appending
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if samples.exists() and samples.read_bytes().count(b"\n") >= 15:
                    break
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    stored_before = samples.read_bytes().count(b"\n")
    assert 0 < stored_before < total
    if torn:
        assert not samples.read_bytes().endswith(b"\n")
        with pytest.warns(UserWarning, match="unfinished last line"):
            store = RunStore.open_or_create(run_dir, MANIFEST, resume=True)
    else:  # the kill may (rarely) have landed mid-write too: a warning is allowed, not required
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            store = RunStore.open_or_create(run_dir, MANIFEST, resume=True)
    all_keys = [RecordKey("t", f"p{i}", 0, "s") for i in range(total)]
    with store:
        todo = store.pending(all_keys)
        assert len(todo) == total - stored_before
        for key in todo:
            gen = Generation(key.prompt_id, key.sample_index, key.setting, text="z")
            store.append(SampleRecord(key.task, gen, correct=False))
        store.finish()
        assert store.pending(all_keys) == []
    counts = keys_in_file(run_dir)
    assert set(counts) == set(all_keys) and set(counts.values()) == {1}
    with RunStore.open(run_dir, read_only=True) as reader:
        assert sorted(r.key for r in reader.records()) == sorted(all_keys)
        assert reader.manifest["status"] == "finished" and len(reader.manifest["resumes"]) == 1
