"""What Slurm says about jobs, and how xling stops them.

Asking: one ``squeue`` for every job the controller still holds (pending, running,
and those that ended less than its MinJobAge ago), then one ``sacct`` for the jobs it
no longer holds. Either answers when the other cannot: without slurmdbd, sacct fails
and a job the controller has forgotten is over (``GONE``), never alive forever;
without the controller, sacct's record stands. When neither answers there is no
answer, and the caller counts the job as alive: a scheduler outage must not fail runs.

A job pending for a reason that no waiting clears (its time limit over the
partition's, an invalid account) is reported as never starting, and whoever sees it
removes it: nothing stays queued forever. ``PartitionConfig`` is also what Slurm
(22.05) gives any job at submission that breaks one of its partition's limits; its next
scheduling pass names the limit. So that reason counts only once the job is older than
one full pass (``SETTLE_S``), and the message names the limit whenever Slurm has.

Stopping: ``scancel --signal=TERM`` first. It reaches the processes of the job's
steps (submitit's, which ignores it, and the worker's), so the worker checkpoints
however long that takes and the job then ends by itself. Only a job still there
after a grace period, or one that never started, is cancelled outright (after which
Slurm gives what is left KillWait seconds before SIGKILL).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from engine.backends.base import BackendError, JobInfo

COMMAND_TIMEOUT_S = 30.0  # a hung controller must not hang xling
CANCEL_GRACE_S = 120.0  # how long `xling cancel` lets a signalled worker checkpoint before scancel
# Slurm's default sched_interval: by then a full scheduling pass has replaced the
# submit-time PartitionConfig with the limit the job breaks.
SETTLE_S = 60.0

# Slurm job states in which the job may still run or rerun the worker.
ALIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESIZING",
        "SUSPENDED",
        "STAGE_OUT",
        "SIGNALING",
        "PREEMPTED",
    }
)

# Pending reasons that no amount of waiting clears: the job as submitted never starts.
NEVER_STARTS = {
    "PartitionTimeLimit": "its time limit is over the partition's MaxTime",
    "PartitionNodeLimit": "it asks for more nodes than the partition allows",
    "PartitionConfig": "it asks for more than the partition's nodes have (CPUs, memory or GPUs)",
    "BadConstraints": "its constraints match no node",
    "InvalidAccount": "its account is not valid",
    "InvalidQOS": "its QOS is not valid",
    "DependencyNeverSatisfied": "its dependency can never be satisfied",
    "QOSMaxWallDurationPerJobLimit": "its time limit is over its QOS's limit",
    "AssocMaxWallDurationPerJobLimit": "its time limit is over its account's limit",
}

GONE = "GONE"  # not in the controller's memory, and no accounting record to say how it ended
FORGOTTEN = "no longer in Slurm's queue, and no accounting record (sacct) to say how it ended"


class _NoAnswer(Exception):
    """The command could not be run or did not answer (not installed, timed out, failed)."""


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _NoAnswer(f"{args[0]}: {exc}") from None


def _age_s(submitted: str | None) -> float:
    """Seconds since squeue's submit time (%V, local time); unknown counts as long ago."""
    try:
        return (datetime.now() - datetime.fromisoformat(submitted or "")).total_seconds()
    except ValueError:
        return float("inf")


def _info(job_id: str, state: str, node: str | None, reason: str | None, submitted: str | None = None) -> JobInfo:
    state = (state or "UNKNOWN").split()[0]  # sacct says "CANCELLED by 0"
    reason = None if reason in (None, "", "None") else reason
    settled = reason != "PartitionConfig" or _age_s(submitted) >= SETTLE_S
    never = state == "PENDING" and reason in NEVER_STARTS and settled
    return JobInfo(
        state,
        alive=state in ALIVE_STATES and not never,
        host=None if node in (None, "", "None assigned", "(null)") else node,
        reason=reason,
        never_starts=never,
        meaning=NEVER_STARTS.get(reason or "") if state == "PENDING" and settled else None,
    )


def squeue(job_ids: list[str]) -> dict[str, JobInfo]:
    """Every given job the controller still holds; a job it does not know is left out."""
    done = _run(["squeue", "--noheader", "--states=all", f"--jobs={','.join(job_ids)}", "--format=%i|%T|%N|%r|%V"])
    if done.returncode != 0:
        if "Invalid job id" in done.stderr:  # none of them is known any more
            return {}
        raise _NoAnswer(done.stderr.strip() or f"squeue exited with {done.returncode}")
    out = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 5 and parts[0] in job_ids:
            out[parts[0]] = _info(*parts)
    return out


def sacct(job_ids: list[str]) -> dict[str, JobInfo]:
    """Accounting records of the given jobs (the last record of a requeued job wins)."""
    done = _run(
        ["sacct", "--noheader", "--parsable2", "--allocations", f"--jobs={','.join(job_ids)}",
         "--format=JobID,State,NodeList"]
    )  # fmt: skip
    if done.returncode != 0:
        raise _NoAnswer(done.stderr.strip() or f"sacct exited with {done.returncode}")
    out = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3 and parts[0] in job_ids:
            out[parts[0]] = _info(parts[0], parts[1], parts[2], None)
    return out


def query_jobs(job_ids: Iterable[str]) -> dict[str, JobInfo]:
    """job id -> what Slurm says, for every job it answers about (see the module's docstring)."""
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    try:
        held = squeue(ids)
    except _NoAnswer:
        try:
            return sacct(ids)  # the controller is away; accounting still knows
        except _NoAnswer:
            return {}
    rest = [j for j in ids if j not in held]
    if not rest:
        return held
    try:
        recorded = sacct(rest)
    except _NoAnswer:
        recorded = {}
    for job_id in rest:
        held[job_id] = recorded.get(job_id) or JobInfo(GONE, alive=False, meaning=FORGOTTEN)
    return held


class JobWatcher:
    """One query for every job a launcher follows, at most every ``interval`` seconds
    (sooner just after a submission, as submitit does: 2 s, 4 s, 8 s ...)."""

    def __init__(self, interval: float, query: Callable[[Iterable[str]], dict[str, JobInfo]] = query_jobs) -> None:
        self.interval = interval
        self._query = query
        self._jobs: set[str] = set()
        self._infos: dict[str, JobInfo] = {}
        self._asked = float("-inf")
        self._newest = time.monotonic()

    def watch(self, job_id: str) -> None:
        self._jobs.add(job_id)
        self._newest = time.monotonic()

    def forget(self, job_id: str) -> None:
        self._jobs.discard(job_id)
        self._infos.pop(job_id, None)

    def info(self, job_id: str) -> JobInfo | None:
        """The latest answer about the job; None before the first, or while Slurm does not answer."""
        now = time.monotonic()
        if now - self._asked >= min(self.interval, max(2.0, (now - self._newest) / 2)):
            self._asked = now
            self._infos.update(self._query(self._jobs))
        return self._infos.get(job_id)


def never_starts_message(job_id: str, info: JobInfo) -> str:
    return f"Slurm would never start job {job_id}: {info.explained}; removed it from the queue"


def scancel(*args: str) -> bool:
    """True when scancel did what it was asked (a job already gone is fine for a plain cancel)."""
    try:
        done = subprocess.run(["scancel", *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except FileNotFoundError:
        raise BackendError("scancel not found: run xling cancel on a Slurm login node") from None
    except subprocess.TimeoutExpired:
        raise BackendError(f"scancel {' '.join(args)} did not answer within {COMMAND_TIMEOUT_S:.0f} s") from None
    return done.returncode == 0


def signal_job(job_id: str) -> bool:
    """SIGTERM to the job's steps (the worker checkpoints); False when the job has none (pending, over)."""
    return scancel("--signal=TERM", job_id)


def cancel_job(job_id: str) -> None:
    if not scancel(job_id):
        raise BackendError(f"scancel {job_id} failed (see `squeue -j {job_id}`)")


def _ended(job_id: str, grace: float) -> bool:
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        info = query_jobs([job_id]).get(job_id)
        if info is not None and not info.alive:
            return True
        time.sleep(1.0)
    return False


class SlurmJobs:
    """Slurm jobs of runs started by any xling process: one query for many, and stopping one."""

    def __init__(self, grace: float = CANCEL_GRACE_S) -> None:
        self.grace = grace

    def query(self, jobs: dict[str, Path]) -> dict[str, JobInfo]:
        return query_jobs(jobs)

    def cancel(self, job_id: str, run_dir: Path, running: bool) -> str:
        if running and signal_job(job_id):
            if _ended(job_id, self.grace):
                return f"job {job_id}: the worker checkpointed and stopped (`xling resume` continues it)"
            cancel_job(job_id)
            return (
                f"job {job_id}: the worker did not stop within {self.grace:.0f} s of its signal; "
                "scancel (it resumes from its last checkpoint)"
            )
        cancel_job(job_id)
        return f"scancel {job_id}: removed from the Slurm queue"
