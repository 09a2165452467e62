"""The house's rules, checked: the forcing runtime is pure, imports point down the flow, no cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import s1

ROOT = Path(s1.__file__).parent
HEAVY = ("torch", "transformers", "vllm", "aiohttp", "fastapi", "httpx", "numpy")
# Layers, bottom up: a module may import its own layer and the ones below, never one above.
LAYERS = {"records": 0, "forcing": 1, "synthetic": 1, "grading": 2, "tasks": 2, "metrics": 2, "models": 2,
          "defaults": 2, "backends": 3, "train": 3, "synthetic.tiny_model": 3,  # the tiny model's training recipe
          "methods": 4, "curate": 5, "eval": 5, "serve": 5, "cli": 6}


def _layer(module: str) -> int:
    """The layer of `s1.a.b...`: its longest listed prefix below `s1`."""
    parts = module.split(".")[1:]
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return LAYERS[".".join(parts[:n])]
    return -1


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, package: str) -> set[str]:
    """Project modules a file imports when it runs (imports under `if TYPE_CHECKING:` never run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("s1")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            if base.startswith("s1"):
                found |= {f"{base}.{a.name}" for a in node.names} | {base}
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for target in _imports(path, package):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and target != "s1":
                graph[name].add(target)
    return graph


def test_the_forcing_runtime_imports_no_ml_or_http_library():
    modules = sorted(n for n in _modules() if n.startswith("s1.forcing"))
    code = (f"import sys\nfor m in {modules!r}: __import__(m)\n"
            f"print(','.join(sorted(h for h in {HEAVY!r} if h in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "", f"s1.forcing pulled in: {out.stdout.strip()}"


def test_no_module_imports_one_above_it_in_the_flow():
    wrong = []
    for name, targets in _graph().items():
        here = _layer(name)
        for target in targets:
            there = _layer(target)
            if here >= 0 and there > here:
                wrong.append(f"{name} -> {target}")
    assert not wrong, "imports against the flow:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles_between_project_modules():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"
