"""The text a model is prompted with: the question alone (as s1 does), plus a control sentence on request.

s1 prompts with `{Question}` and nothing else (`QUERY_TEMPLATE = '{Question}'` in the aime / openai_math
tasks of simplescaling/lm-evaluation-harness). Its conditional length-control baselines (the s1 paper's
token-, step- and class-conditional control) append one sentence after a blank line. The sentences below
are copied verbatim from the `PROMPTSTEP` / `PROMPTTOKEN` / `PROMPTLONG` / `PROMPTSHORT` branches of that
harness's task utils (`lm_eval/tasks/openai_math/utils.py`, `lm_eval/tasks/aime/utils.py`,
`lm_eval/tasks/gpqa/openai/utils.py`; read in copies of the harness, as the revision of the simplescaling
repository at hand no longer has the branches), all identical:

    QUERY_TEMPLATE = '{Question}\\n\\nThink for up to ' + os.getenv("PROMPTTOKEN") + ' tokens.'

For GPQA the sentence follows the choices block (`QUERY_TEMPLATE += '\\n\\n...'`), which is what
`build_prompt` does since an item's question already holds its choices.

Step-conditional control in the paper also marks steps inside the thinking (a countdown of steps left);
that belongs to generation, not to the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from s1.tasks.base import TaskItem

SEPARATOR = "\n\n"
TOKEN_CONDITIONAL = "Think for up to {n} tokens."
STEP_CONDITIONAL = "Think for up to {n} steps."
CLASS_CONDITIONAL: dict[str, str] = {
    "long": ("Answer after a long amount of thinking. If you feel like you are finished early, spend the extra "
             "time trying to double-check your work until you are absolutely sure that you have the correct "
             "answer."),
    "short": "Answer after a short amount of thinking. Do not spend excessive time double-checking your work.",
}
CONTROL_KINDS: tuple[str, ...] = ("tokens", "steps", "class")
CHOICE_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Control:
    """A conditional-control instruction: `tokens`/`steps` with an int >= 1, or `class` with long/short."""

    kind: str
    value: int | str

    def __post_init__(self) -> None:
        if self.kind not in CONTROL_KINDS:
            raise ValueError(f"control kind must be one of {list(CONTROL_KINDS)}, got {self.kind!r}")
        if self.kind == "class":
            if self.value not in CLASS_CONDITIONAL:
                raise ValueError(f"class control value must be one of {list(CLASS_CONDITIONAL)}, "
                                 f"got {self.value!r}")
        elif isinstance(self.value, bool) or not isinstance(self.value, int) or self.value < 1:
            raise ValueError(f"{self.kind} control value must be an integer >= 1, got {self.value!r}")

    @property
    def sentence(self) -> str:
        """The exact s1 sentence for this control."""
        if self.kind == "tokens":
            return TOKEN_CONDITIONAL.format(n=self.value)
        if self.kind == "steps":
            return STEP_CONDITIONAL.format(n=self.value)
        return CLASS_CONDITIONAL[str(self.value)]

    @property
    def suffix(self) -> str:
        """What `build_prompt` appends to the question: a blank line, then the sentence."""
        return SEPARATOR + self.sentence

    @property
    def label(self) -> str:
        """Short setting label, e.g. `tokens=1024` or `class=long` (the form `parse` reads)."""
        return f"{self.kind}={self.value}"

    @classmethod
    def parse(cls, text: str) -> Control:
        """Read `tokens=N`, `steps=N`, `class=long|short` (`:` works for `=`), or just `long` / `short`."""
        raw = text.strip() if isinstance(text, str) else ""
        if raw in CLASS_CONDITIONAL:
            return cls("class", raw)
        kind, sep, value = raw.replace(":", "=").partition("=")
        kind, value = kind.strip(), value.strip()
        if not sep or kind not in CONTROL_KINDS:
            raise ValueError(f"control must look like tokens=N, steps=N, class=long or class=short, got {text!r}")
        if kind == "class":
            return cls(kind, value)
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"{kind} control value must be an integer >= 1, got {value!r}") from None
        return cls(kind, number)


def build_prompt(item: TaskItem | str, control: Control | None = None) -> str:
    """The user message for an item: its question, then the control sentence if one is given."""
    question = item.question if isinstance(item, TaskItem) else item
    if not isinstance(question, str):
        raise ValueError(f"build_prompt needs a TaskItem or a question string, got {item!r}")
    if control is not None and not isinstance(control, Control):
        raise ValueError(f"control must be a Control or None, got {control!r} (use Control.parse for text)")
    return question if control is None else question + control.suffix


# ---------------------------------------------------------------------------------------------- choices


def format_choices(choices: Sequence[str]) -> str:
    """`A) ...\\nB) ...` lines, the layout of s1's GPQA prompt."""
    if not 1 <= len(choices) <= len(CHOICE_LETTERS):
        raise ValueError(f"need 1..{len(CHOICE_LETTERS)} choices, got {len(choices)}")
    return "\n".join(f"{CHOICE_LETTERS[i]}) {choice}" for i, choice in enumerate(choices))


def choice_question(question: str, choices: Sequence[str]) -> str:
    """s1's GPQA prompt: `{Question}\\n\\nA) {choice1}\\nB) {choice2}\\nC) {choice3}\\nD) {choice4}`."""
    return question + SEPARATOR + format_choices(choices)


_MATHVISTA_HINTS = {
    "multi_choice": "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, "
                    "at the end.",
    "integer": "Hint: Please answer the question requiring an integer answer and provide the final value, "
               "e.g., 1, 2, 3, at the end.",
    "float1": "Hint: Please answer the question requiring a floating-point number with one decimal place and "
              "provide the final value, e.g., 1.2, 1.3, 1.4, at the end.",
    "float2": "Hint: Please answer the question requiring a floating-point number with two decimal places and "
              "provide the final value, e.g., 1.23, 1.34, 1.45, at the end.",
    "list": "Hint: Please answer the question requiring a Python list as an answer and provide the final list, "
            "e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end.",
}


def mathvista_query(question: str, *, question_type: str | None, answer_type: str | None,
                    choices: Sequence[str] | None = None, unit: str | None = None,
                    precision: Any = None) -> str:
    """MathVista's zero-shot query (its `build_query`, as in the Hub's `query` column): hint, question
    with `(Unit: ...)`, then `Choices:` and `(A) ...` lines. Used when a copy lacks the `query` column."""
    if question_type == "multi_choice":
        hint = _MATHVISTA_HINTS["multi_choice"]
    elif answer_type == "float" and precision is not None and float(precision) in (1.0, 2.0):
        hint = _MATHVISTA_HINTS[f"float{int(float(precision))}"]
    else:
        hint = _MATHVISTA_HINTS.get(str(answer_type), "")
    text = f"Question: {question}" + (f" (Unit: {unit})" if unit else "")
    parts = [hint, text]
    if choices:
        parts.append("\n".join(["Choices:"] + [f"({CHOICE_LETTERS[i]}) {c}" for i, c in enumerate(choices)]))
    return "\n".join(p for p in parts if p)
