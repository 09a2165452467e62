"""MathVista's images and categories: what an item shows the model and how a report breaks it down.

Items keep their image as MathVista names it (`images/1.jpg`), relative to the data directory
(`metadata["image_root"]`, set by the loader for local files: `testmini.json` + `images/`). Items from
the Hub have no directory; their pixels come from the dataset's `decoded_image` column, read once per
process. A missing image is not skipped here: the backend records that sample as failed, naming the file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from s1.tasks.base import HubUnavailableError, TaskItem

HUB_ID, HUB_SPLIT = "AI4Math/MathVista", "testmini"
CATEGORY_FIELDS = ("question_type", "answer_type", "skills")


def item_images(item: TaskItem) -> tuple[Any, ...]:
    """The images to prompt `item` with: local paths resolved against its data directory, or the Hub's
    decoded images (PIL) for items loaded from the Hub."""
    if not item.images:
        return ()
    root = item.metadata.get("image_root")
    out: list[Any] = []
    for name in item.images:
        path = Path(name)
        if path.is_absolute() or str(name).startswith(("http://", "https://", "data:")):
            out.append(name)
        elif root is not None:
            out.append(str(Path(root) / path))
        else:
            out.append(hub_image(item.id))
    return tuple(out)


def hub_image(pid: str) -> Any:
    """MathVista testmini's decoded image for `pid` (needs `datasets` and the Hub)."""
    images = _hub_images()
    if pid not in images:
        raise HubUnavailableError(f"{HUB_ID} ({HUB_SPLIT}) has no image for pid {pid!r}")
    return images[pid]


@lru_cache(maxsize=1)
def _hub_images() -> dict[str, Any]:
    try:
        import datasets

        ds = datasets.load_dataset(HUB_ID, split=HUB_SPLIT)
    except Exception as exc:  # noqa: BLE001 - offline, not installed, gated: one clear error
        raise HubUnavailableError(f"cannot load {HUB_ID} images from the Hub ({type(exc).__name__}: {exc}); "
                                  "pass a local directory with testmini.json and images/") from None
    return {str(pid): image for pid, image in zip(ds["pid"], ds["decoded_image"], strict=True)}


def item_categories(item: TaskItem) -> dict[str, list[str]]:
    """MathVista's report categories for an item: question type, answer type and skills (several per
    item). Empty for other tasks."""
    if item.grader != "mathvista":
        return {}
    meta = item.metadata
    out: dict[str, list[str]] = {}
    for name in ("question_type", "answer_type"):
        if meta.get(name):
            out[name] = [str(meta[name])]
    skills = (meta.get("mathvista") or {}).get("skills") if isinstance(meta.get("mathvista"), dict) else None
    if skills:
        out["skills"] = [str(s) for s in skills]
    return out
