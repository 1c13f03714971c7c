"""Where runs train when one machine is not enough: Slurm (through submitit) or Ray.

The settings live in experiments.toml under ``[cluster.slurm]`` and ``[cluster.ray]``
and `xling run` flags override them. They change where a run trains, never what it
computes, so they are not part of a run's spec or id: a run started locally can be
resumed on the cluster and the other way round.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.config.locate import SpecError, TomlLocator, describe_validation_error, validation_problem
from engine.config.spec import merge_tables


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlurmSettings(_Settings):
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    gpus_per_run: int = Field(1, ge=0, description="GPUs per job; 0 trains on the node's CPUs")
    cpus_per_run: int = Field(8, ge=1, description="CPU cores per job (data loading, CPU training)")
    mem: str | None = Field(None, description="memory per job as sbatch takes it, e.g. 64G")
    time: int = Field(
        240,
        ge=1,
        description="time limit in minutes; the toml and --time also take Slurm's forms: 90, 4:00:00, 1-12:00:00",
    )
    sbatch: dict[str, str | bool] = Field(default_factory=dict, description="extra #SBATCH options")
    setup: list[str] = Field(default_factory=list, description="shell lines run before the worker")
    signal_delay_s: int = Field(120, ge=10, description="the job is told to checkpoint this long before its limit")
    max_requeues: int = Field(3, ge=0, description="times a timed-out job is requeued to continue")
    poll_s: int = Field(30, ge=1, description="seconds between squeue/sacct calls while xling follows its jobs")
    python: str | None = Field(None, description="interpreter on the nodes [default: this one]")

    @field_validator("time", mode="before")
    @classmethod
    def _slurm_time(cls, v: Any) -> Any:
        return parse_slurm_time(v) if isinstance(v, str) else v

    @field_validator("sbatch", mode="before")
    @classmethod
    def _option_values(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): (x if isinstance(x, (bool, str)) else str(x)) for k, x in v.items()}
        return v


class RaySettings(_Settings):
    address: str = Field("auto", description="ray.init address: auto, ray://host:10001 or host:6379")
    gpus_per_run: float = Field(1.0, ge=0, description="num_gpus of each run's task; 0 trains on CPUs")
    cpus_per_run: int = Field(1, ge=1)


class ClusterSettings(_Settings):
    slurm: SlurmSettings = SlurmSettings()
    ray: RaySettings = RaySettings()


_SLURM_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def parse_slurm_time(text: str) -> int:
    """Slurm's time forms (minutes, M:S, H:M:S, D-H, D-H:M, D-H:M:S) to whole minutes, rounded up."""
    m = _SLURM_TIME.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a Slurm time (minutes, HH:MM:SS or D-HH:MM:SS)")
    days, first, second, third = m.groups()
    parts = [int(x) for x in (first, second, third) if x is not None]
    if days is not None:  # D-H, D-H:M, D-H:M:S
        h, mi, s = (parts + [0, 0])[:3]
        seconds = ((int(days) * 24 + h) * 60 + mi) * 60 + s
    elif len(parts) == 1:  # minutes
        seconds = parts[0] * 60
    elif len(parts) == 2:  # M:S
        seconds = parts[0] * 60 + parts[1]
    else:  # H:M:S
        seconds = (parts[0] * 60 + parts[1]) * 60 + parts[2]
    return max(1, math.ceil(seconds / 60))


def load_cluster(path: Path | str) -> ClusterSettings:
    """The ``[cluster]`` table of an experiments file (defaults when it has none)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        doc = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError):
        return ClusterSettings()  # load_experiments reports a missing or broken file
    raw = doc.get("cluster", {})
    where = TomlLocator(text, str(path))
    if not isinstance(raw, dict):
        raise SpecError(f"{where.at(('cluster',))}: cluster must be a table ([cluster.slurm], [cluster.ray])")
    unknown = sorted(set(raw) - set(ClusterSettings.model_fields))
    if unknown:
        known = ", ".join(ClusterSettings.model_fields)
        loc = ("cluster", unknown[0])
        raise SpecError(
            f"{where.at(loc)}: cluster.{unknown[0]}: unknown field {unknown[0]!r} (known backends: {known})"
        )
    try:
        return ClusterSettings.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(describe_validation_error(exc, where, ("cluster",))) from None


def with_flags(settings: ClusterSettings, backend: str, flags: dict[str, Any]) -> ClusterSettings:
    """Command-line values (None: not given) over the file's, checked the same way."""
    given = {k: v for k, v in flags.items() if v is not None and v != {}}
    if not given:
        return settings
    current = getattr(settings, backend)
    try:
        new = type(current).model_validate(merge_tables(current.model_dump(), given))
    except ValidationError as exc:
        loc, msg = validation_problem(exc)
        raise SpecError(f"--{str(loc[0]).replace('_', '-')}: {msg}") from None
    return settings.model_copy(update={backend: new})


def parse_sbatch_options(options: list[str] | None) -> dict[str, str | bool]:
    """``--sbatch KEY=VALUE`` (or a bare ``KEY`` for a flag such as exclusive)."""
    out: dict[str, str | bool] = {}
    for opt in options or []:
        key, sep, value = opt.partition("=")
        key = key.strip().lstrip("-")
        if not key or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", key):
            raise SpecError(f"--sbatch {opt!r}: give an sbatch option as KEY=VALUE, e.g. constraint=a100")
        out[key] = value if sep else True
    return out
