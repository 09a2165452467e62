"""The curation config: one TOML (or JSON) file for the whole pipeline.

    out_dir = "s1k-out"          # every stage reads and writes here
    seed = 0                     # limits, GPQA choice order and the selection
    [[sources]]                  # stage 1 (s1.curate.sources.SourceSpec), one table per source
    [decontaminate]              # stage 2 (DecontamConfig)
    [models.<name>]              # teachers, weaker models, judge, classifier (llm.ModelSpec)
    [traces]                     # stage 3 (TracesConfig): teacher = "<name>", models = [...]
    [featurize]                  # stage 4 (FeaturizeConfig)
    [select]                     # stage 5 (SelectConfig)

Relative paths are taken from the current directory. A name instead of a path loads a shipped
config from `s1/curate/configs/` (`s1k`: s1's sixteen sources).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from s1.curate.decontaminate import DecontamConfig
from s1.curate.featurize import FeaturizeConfig
from s1.curate.io import CurateError
from s1.curate.llm import ModelSpec
from s1.curate.select import SelectConfig
from s1.curate.sources import SourceSpec
from s1.curate.table import Table
from s1.curate.traces import TracesConfig

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass(frozen=True)
class CurateConfig:
    out_dir: Path
    seed: int = 0
    sources: tuple[SourceSpec, ...] = ()
    decontaminate: DecontamConfig = field(default_factory=DecontamConfig)
    models: dict[str, ModelSpec] = field(default_factory=dict)
    traces: TracesConfig | None = None
    featurize: FeaturizeConfig | None = None
    select: SelectConfig = field(default_factory=SelectConfig)
    source: str = ""

    @property
    def select_seed(self) -> int:
        return self.select.seed if self.select.seed is not None else self.seed

    def need(self, section: str) -> None:
        if getattr(self, section) is None:
            raise CurateError(f"{self.source}: this stage needs a [{section}] table")


def shipped_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def resolve_config_path(name: str | Path) -> Path:
    path = Path(name).expanduser()
    if path.is_file():
        return path
    shipped = CONFIG_DIR / f"{name}.toml"
    if shipped.is_file():
        return shipped
    raise CurateError(f"config {str(name)!r} is neither a file nor a shipped config "
                      f"(shipped: {', '.join(shipped_configs()) or 'none'})")


def load_config(name: str | Path, out_dir: str | Path | None = None) -> CurateConfig:
    """Read and validate a config file (or a shipped config by name); `out_dir` overrides the file's."""
    path = resolve_config_path(name)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise CurateError(f"{path}: cannot read ({exc})") from None
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CurateError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'} ({exc})") from None
    return parse_config(data, str(path), out_dir)


def parse_config(data: dict, source: str = "config", out_dir: str | Path | None = None) -> CurateConfig:
    t = Table(data, "")
    out = t.str("out_dir", None)
    if out_dir is None and out is None:
        raise CurateError(f"{source}: out_dir is required (or pass --out-dir)")
    seed = t.int("seed", 0)
    models_t = t.table("models")
    models = {name: ModelSpec.from_table(name, models_t.table(name)) for name in list(models_t.data)}
    models_t.done()
    cfg = CurateConfig(
        out_dir=Path(out_dir if out_dir is not None else out).expanduser(), seed=seed,
        sources=tuple(SourceSpec.from_table(s) for s in t.tables("sources")),
        decontaminate=DecontamConfig.from_table(t.table("decontaminate")), models=models,
        traces=TracesConfig.from_table(t.table("traces")) if t.has("traces") else t.raw("traces", None),
        featurize=FeaturizeConfig.from_table(t.table("featurize")) if t.has("featurize") else t.raw("featurize", None),
        select=SelectConfig.from_table(t.table("select")), source=source,
    )
    t.done()
    _check_model_names(cfg)
    _check_groups(cfg)
    return cfg


def _check_groups(cfg: CurateConfig) -> None:
    """A group is capped and decontaminated by its first source's settings; the others must not differ."""
    first: dict[str, SourceSpec] = {}
    for spec in cfg.sources:
        lead = first.setdefault(spec.group_name, spec)
        if lead is spec:
            continue
        for key in ("limit", "sample", "decontaminate"):
            if getattr(spec, key) != getattr(lead, key):
                raise CurateError(f"{cfg.source}: source {spec.name!r} is in group {spec.group_name!r}, whose {key} "
                                  f"is set by its first source {lead.name!r}; set it there only")


def _check_model_names(cfg: CurateConfig) -> None:
    """Every model a stage names must be defined, so a typo fails before hours of generation."""
    refs: list[tuple[str, str]] = []
    if cfg.traces is not None:
        refs += [("traces.teacher", cfg.traces.teacher)] + [("traces.models", m) for m in cfg.traces.models]
    if cfg.featurize is not None:
        refs += [("featurize.judge", cfg.featurize.judge), ("featurize.domain_model", cfg.featurize.domain_model)]
    for where, name in refs:
        if name is not None and name not in cfg.models:
            raise CurateError(f"{cfg.source}: {where} names model {name!r}, which no [models.{name}] table defines "
                              f"(defined: {', '.join(cfg.models) or 'none'})")
    graded = set(cfg.traces.all_models) if cfg.traces else set()
    if cfg.featurize is not None and cfg.featurize.graded is not None:
        graded = set(cfg.featurize.graded)
    missing = [m for m in cfg.select.weak_models if m not in graded]
    if missing:
        raise CurateError(f"{cfg.source}: select.weak_models {', '.join(missing)} must be graded models "
                          f"(traces.models, or featurize.graded)")
