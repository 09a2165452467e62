"""Where training records come from and how they become prompt/completion rows.

A source is a local file or directory (`s1 curate` output, JSONL / Parquet with `question`,
`thinking`, `answer`, or s1K's columns) or a Hub dataset id such as `simplescaling/s1K-1.1`. Rows go
through `curated_record` (the same function `s1 curate` uses), so curation and training agree on the
text. The length report says how many examples exceed the block size and what happens to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s1.forcing.formats import ReasoningFormat
from s1.train.control_data import ControlSpec, apply_control
from s1.train.sft import curated_record, load_records, to_prompt_completion

OVERFLOW_POLICIES = ("truncate", "drop", "error")
# s1K-1.1 keeps two teachers' traces; DeepSeek-R1's are the ones s1.1 trains on.
S1K11_COLUMNS = {"deepseek_thinking_trajectory": "thinking_trajectories", "deepseek_attempt": "attempt"}


def normalise_row(row: dict[str, Any]) -> dict[str, Any]:
    """Map known Hub layouts (s1K-1.1's `deepseek_*` columns) onto s1K's, which `curated_record` reads."""
    if "thinking_trajectories" in row or "thinking" in row:
        return row
    if all(k in row for k in S1K11_COLUMNS):
        out = dict(row)
        for src, dst in S1K11_COLUMNS.items():
            out[dst] = [row[src]] if dst == "thinking_trajectories" else row[src]
        return out
    return row


def looks_like_hub_id(source: str) -> bool:
    """`org/name` that is not an existing local path."""
    return (not Path(source).exists() and source.count("/") == 1 and not source.startswith((".", "/", "~"))
            and not source.endswith((".jsonl", ".json", ".parquet")))


# what `s1 curate` (its select stage) writes into its output directory, in the order preferred here
CURATE_SELECTIONS = ("selected.parquet", "selected.jsonl", "selected_dataset")


def resolve_local(path: Path) -> Path:
    """A file or saved dataset as is; an `s1 curate` output directory as its selection file."""
    if not path.is_dir() or (path / "dataset_info.json").exists() or (path / "state.json").exists():
        return path
    for name in CURATE_SELECTIONS:
        if (path / name).exists():
            return path / name
    raise ValueError(f"{path} is neither a saved dataset nor an `s1 curate` output directory "
                     f"(none of {', '.join(CURATE_SELECTIONS)} in it)")


def load_training_records(source: str, split: str = "train") -> list[dict[str, str]]:
    """Records (`question`, `thinking`, `answer`) from a local path (file, saved dataset, `s1 curate`
    output directory) or a Hub dataset id."""
    path = Path(source).expanduser()
    if path.exists():
        return load_records(str(resolve_local(path)))
    if not looks_like_hub_id(source):
        raise ValueError(f"training data not found: {source!r} (a local JSONL / Parquet / dataset directory, "
                         "or a Hub dataset id like simplescaling/s1K-1.1)")
    from datasets import load_dataset

    try:
        rows = load_dataset(source, split=split).to_list()
    except Exception as exc:  # noqa: BLE001 - offline, missing, or gated: one message with the cause
        raise ValueError(f"cannot load Hub dataset {source!r} (split {split!r}): {exc}") from exc
    return [curated_record(normalise_row(r)) for r in rows]


def build_rows(records: list[dict[str, str]], tokenizer: Any, fmt: ReasoningFormat,
               control: ControlSpec | None = None, system: str | None = None,
               layout: str = "completion") -> list[dict[str, str]]:
    """Prompt/completion rows in a reasoning format and layout (`s1.train.sft`), optionally with token- /
    step-conditional control."""
    rows = []
    for n, record in enumerate(records):
        if control is not None:
            record = apply_control(record, control, tokenizer)
        try:
            rows.append(to_prompt_completion(record, tokenizer, fmt, system=system, layout=layout))
        except ValueError as exc:
            raise ValueError(f"training record {n}: {exc}") from None
    return rows


@dataclass(frozen=True)
class LengthReport:
    """Token lengths of the rows against the block size, and what the overflow policy did."""

    examples: int
    over_block: int
    longest: int
    block_size: int
    policy: str
    dropped: int = 0

    def describe(self) -> str:
        action = {"truncate": "cut at the end (their answers are lost)", "drop": "dropped",
                  "error": "refused"}[self.policy]
        fate = f" and are {action}" if self.over_block else ""
        return (f"{self.examples} examples, longest {self.longest} tokens; {self.over_block} exceed the block "
                f"size {self.block_size}{fate}")


def apply_overflow(rows: list[dict[str, str]], tokenizer: Any, block_size: int,
                   policy: str = "truncate") -> tuple[list[dict[str, str]], LengthReport]:
    """Measure every row; keep, drop or refuse the ones longer than `block_size` tokens."""
    if policy not in OVERFLOW_POLICIES:
        raise ValueError(f"unknown overflow policy {policy!r}; allowed: {', '.join(OVERFLOW_POLICIES)}")
    lengths = [len(tokenizer(r["prompt"] + r["completion"], add_special_tokens=False)["input_ids"]) for r in rows]
    over = [i for i, n in enumerate(lengths) if n > block_size]
    report = LengthReport(examples=len(rows), over_block=len(over), longest=max(lengths, default=0),
                          block_size=block_size, policy=policy, dropped=len(over) if policy == "drop" else 0)
    if over and policy == "error":
        raise ValueError(f"{len(over)} examples exceed the block size {block_size} (first: row {over[0]}, "
                         f"{lengths[over[0]]} tokens); raise --block-size or use --overflow truncate|drop")
    if policy == "drop":
        skip = set(over)
        rows = [r for i, r in enumerate(rows) if i not in skip]
    return rows, report
