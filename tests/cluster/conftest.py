"""The live clusters the tests in this folder run against, once per session.

``tests/cluster/slurm.sh up`` (root, apt) and ``tests/cluster/ray.sh up`` start them
and write their addresses under ``$XLING_CLUSTER_DIR`` (default /tmp/xling-cluster);
the fixtures below read those files. Where a cluster is not up, its tests skip with
the reason and the summary says so in capitals, except in CI (``XLING_CI_CLUSTERS=1``,
set by ``.ci/run``), where they fail: CI must run them. In CI the Ray cluster is started
here, with this interpreter (its Ray and its xling), and stopped at the end of the session.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cluster.helpers import end_leftovers

SCRIPTS = Path(__file__).resolve().parent
CLUSTER_DIR = Path(os.environ.get("XLING_CLUSTER_DIR", "/tmp/xling-cluster"))
IN_CI = os.environ.get("XLING_CI_CLUSTERS") == "1"
MARKERS = {
    "slurm": "a live Slurm (tests/cluster/slurm.sh up)",
    "raycluster": "a live two-node Ray (tests/cluster/ray.sh up)",
}


def read_env_file(path: Path) -> dict[str, str] | None:
    """The ``export A=b C=d`` lines a cluster script writes when its cluster is up."""
    try:
        words = shlex.split(path.read_text(encoding="utf-8"), comments=True)
    except OSError:
        return None
    return dict(w.split("=", 1) for w in words if "=" in w)


def unavailable(marker: str, reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (XLING_CI_CLUSTERS=1: CI must run the {marker} tests)", pytrace=False)
    pytest.skip(reason)


def script(name: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Runs tests/cluster/<name> (its own stop/start subcommands); its output for messages."""
    done = subprocess.run(
        [str(SCRIPTS / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, f"{name} {' '.join(args)}: {done.stderr or done.stdout}"
    return done.stdout + done.stderr


@dataclass(frozen=True)
class Slurm:
    conf: str

    def run(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
        assert not check or done.returncode == 0, f"{' '.join(args)}: {done.stderr}"
        return done.stdout

    def squeue(self) -> dict[str, tuple[str, str]]:
        """job id -> (state, reason) of every job Slurm's controller holds now."""
        out = self.run("squeue", "--noheader", "--states=all", "--format=%i|%T|%r")
        return {i: (s, r) for i, s, r in (line.split("|") for line in out.split())}

    def node_cpus(self) -> int:
        return int(self.run("sinfo", "--noheader", "--Node", "--format=%c").split()[0])

    def kill_outright(self, job_id: str) -> None:
        """SIGKILL to every process of the job, as a lost node or the kernel's OOM killer
        deals it: nobody checkpoints. (`scancel --signal=KILL` is no such kill: Slurm turns
        it into a cancel that sends SIGTERM first, which the worker answers with a checkpoint.)"""
        out = self.run("scontrol", "listpids", job_id)
        for line in out.splitlines()[1:]:
            try:
                os.kill(int(line.split()[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass

    def sacct_state(self, job_id: str) -> str:
        out = self.run("sacct", "--noheader", "--parsable2", "--allocations", f"--jobs={job_id}", "--format=State")
        return out.split()[-1] if out.split() else ""


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Slurm]:
    env = read_env_file(CLUSTER_DIR / "slurm" / "env")
    if not env or "SLURM_CONF" not in env:
        unavailable("slurm", f"no live Slurm: run `sudo {SCRIPTS / 'slurm.sh'} up` (it installs Debian's packages)")
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    if ping.returncode != 0:
        mp.undo()
        unavailable("slurm", f"Slurm at {env['SLURM_CONF']} does not answer: {ping.stdout or ping.stderr}")
    yield Slurm(env["SLURM_CONF"])
    mp.undo()


@dataclass(frozen=True)
class RayCluster:
    address: str
    env: dict[str, str]  # what a driver needs: the address and the cluster's token


@pytest.fixture(autouse=True)
def _no_leftover_xling() -> Iterator[None]:
    yield
    end_leftovers()


def _ray_alive() -> bool:
    """Both nodes' processes recorded by ray.sh still run (its env file outlives them)."""
    done = subprocess.run([str(SCRIPTS / "ray.sh"), "status"], capture_output=True, timeout=60)
    return done.returncode == 0


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'xling[ray]')")
    started = False
    alive = _ray_alive()
    if IN_CI and not alive:
        script("ray.sh", "up", env={"PYTHON": sys.executable})
        started = alive = True
    env = read_env_file(CLUSTER_DIR / "ray" / "env") if alive else None  # a dead cluster's env file is stale
    if not env or "XLING_TEST_RAY_ADDRESS" not in env:
        unavailable(
            "raycluster", f"no live Ray cluster: run `{SCRIPTS / 'ray.sh'} up` (with xling's Python as $PYTHON)"
        )
    yield RayCluster(env["XLING_TEST_RAY_ADDRESS"], env)
    if started:
        script("ray.sh", "down")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Skipped cluster tests are said loudly, after pytest's own last line: a green run
    without them proves less."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    for marker, needs in MARKERS.items():
        n = sum(1 for rep in skipped if marker in getattr(rep, "keywords", {}))
        if n:
            reporter.write_line(
                f"CLUSTER TESTS SKIPPED: {n} test(s) marked {marker} need {needs}", yellow=True, bold=True
            )
