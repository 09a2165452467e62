"""The s1K data pipeline: collect, decontaminate, traces, featurize, select.

    from s1.curate import load_config, run_all
    reports = run_all(load_config("my_curate.toml"))      # or: s1 curate run my_curate.toml

Each stage reads the previous stage's files in the config's `out_dir` and writes its own, so any
stage can be rerun alone (`run_stage`); see `s1.curate.pipeline` for the files and
`s1.curate.config` for the config layout.
"""

from s1.curate.config import CurateConfig, load_config, parse_config, shipped_configs
from s1.curate.io import CurateError, normalize, question_hash
from s1.curate.pipeline import STAGES, report_lines, run_all, run_stage

__all__ = [
    "STAGES",
    "CurateConfig",
    "CurateError",
    "load_config",
    "normalize",
    "parse_config",
    "question_hash",
    "report_lines",
    "run_all",
    "run_stage",
    "shipped_configs",
]
