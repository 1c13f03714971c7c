"""Runs as Slurm jobs, submitted through submitit.

One job per run. submitit writes the sbatch script, the pickled task and Slurm's own
output under ``<run_dir>/slurm/``; on the node the task starts the same
``python -m engine.worker RUN_DIR`` as a local run, so the node appends to the same
``events.jsonl`` and writes the same checkpoints into the run folder, which must be
on a filesystem the login node shares. The launcher ingests those logs as it does
for local runs: a node that dies takes nothing the run had logged with it.

Signals, as Slurm sends them:

- time limit and preemption: submitit asks for ``--signal=USR2@signal_delay_s``; the
  worker checkpoints and stops, the task logs the run as queued again and submitit
  requeues the job (at most ``max_requeues`` times for time limits); the requeued job
  resumes from that checkpoint with the same loss trajectory.
- ``scancel`` (``xling cancel``): SIGTERM to every process of the job; the worker
  checkpoints and reports ``cancelled``, which ``xling resume`` continues. submitit's
  own process ignores SIGTERM (it waits for the worker).

Job states come from one ``sacct`` call for all the jobs being watched, at most every
``POLL_SECONDS`` (submitit's watcher); a finished job is seen at once from its result
file, without asking Slurm.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import submitit
from submitit.helpers import DelayedSubmission
from submitit.slurm.slurm import SlurmInfoWatcher

from engine.backends.base import BackendError, JobInfo, Placement, spawn_worker
from engine.config.cluster import SlurmSettings
from engine.runs.events import EventLog, Status
from engine.runs.status import RunStatus

POLL_SECONDS = 30  # steady-state interval between sacct calls (submitit polls faster just after a submission)
JOB_FOLDER = "slurm"

# Slurm job states (sacct's first word) in which the job may still run or rerun the worker.
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
        "UNKNOWN",
    }
)


class WorkerTask:
    """What submitit pickles and runs on the node: the worker, as a child process.

    A child (not an in-process call) so that a checkpoint is only ever taken between
    two training steps, by the worker itself, whatever signal arrives when.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None

    def __call__(self, run_dir: str, device: str, threads: int | None) -> int:
        self._proc = spawn_worker(run_dir, Placement(device, threads=threads))
        try:
            while self._proc.poll() is None:  # not Popen.wait(): a signal handler must be able to reap it
                time.sleep(0.5)
            return self._proc.returncode
        except KeyboardInterrupt:  # submitit's local executor cancels with SIGINT
            self._proc.terminate()
            return self._proc.wait()

    def checkpoint(self, run_dir: str, device: str, threads: int | None) -> DelayedSubmission:
        """Called by submitit (in its signal handler) on the time-limit/preemption signal,
        before it requeues the job: the worker checkpoints and stops first."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            if not _reaped(proc, float(os.environ.get("XLING_CHECKPOINT_WAIT_S", "60"))):
                proc.kill()  # the periodic checkpoint is what the requeued job resumes from
                _reaped(proc, 10.0)
        with EventLog(Path(run_dir)) as log:
            log.emit(
                Status(
                    Path(run_dir).name,
                    RunStatus.QUEUED,
                    "requeued by Slurm (time limit or preemption); resumes from its last checkpoint",
                )
            )
        return DelayedSubmission(WorkerTask(), run_dir, device, threads)


def _reaped(proc: subprocess.Popen, timeout: float) -> bool:
    """Waits for the child without Popen's lock, which the interrupted code may hold."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
        except ChildProcessError:
            return True  # already reaped
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return True
        time.sleep(0.1)
    return False


class _Job(submitit.SlurmJob):
    watcher = SlurmInfoWatcher(delay_s=POLL_SECONDS)  # one sacct call for every job of this launcher


class _Executor(submitit.SlurmExecutor):
    job_class = _Job


class SlurmHandle:
    """A submitted job as the launcher sees it; polling is cheap (a cached state)."""

    pid = None

    def __init__(self, job: submitit.Job, poll_every: float) -> None:
        self.job = job
        self.job_id = str(job.job_id)
        self.poll_every = poll_every
        self._next_poll = 0.0
        self._code: int | None = None
        self._reason = ""

    def poll(self) -> int | None:
        if self._code is not None or time.monotonic() < self._next_poll:
            return self._code
        self._next_poll = time.monotonic() + self.poll_every
        if self.job.done():
            self._code, self._reason = _outcome(self.job)
        return self._code

    def terminate(self) -> None:
        self.job.cancel(check=False)  # scancel: SIGTERM, the worker checkpoints

    def kill(self) -> None:
        self.job.cancel(check=False)  # Slurm kills what is left after its KillWait

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._next_poll = 0.0
            if self.poll() is not None:
                return self._code
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.5)

    def exit_reason(self, code: int) -> str:
        return self._reason or f"job {self.job_id} ended with code {code}"


def _outcome(job: submitit.Job) -> tuple[int, str]:
    """The worker's exit code from the job's result, or why the job ended without one."""
    where = f"see {job.paths.stdout}"
    if job.paths.result_pickle.exists():
        try:
            return int(job.result()), ""
        except Exception as exc:  # noqa: BLE001 - the task itself failed on the node
            return (
                1,
                f"job {job.job_id} failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; {where}",
            )
    state = str(job.state).split()[0]
    return -1, f"Slurm job {job.job_id} ended: {state}; {where}"


class SlurmBackend:
    """``executor="local"`` runs the same jobs through submitit's local executor (tests, dry runs)."""

    name = "slurm"
    poll_interval = 2.0

    def __init__(self, settings: SlurmSettings, executor: str = "slurm") -> None:
        self.settings = settings
        self.executor = executor
        _quiet_submitit()

    def check(self) -> None:
        """Before anything is queued: is this a machine that can submit Slurm jobs?"""
        missing = [c for c in ("sbatch", "srun") if shutil.which(c) is None]
        if self.executor == "slurm" and missing:
            raise BackendError(
                f"--backend slurm: {' and '.join(missing)} not found on PATH (run xling on a Slurm login node)"
            )

    def placement(self) -> Placement:
        s = self.settings
        return Placement("cuda" if s.gpus_per_run > 0 else "cpu", threads=s.cpus_per_run)

    def start(self, run_dir: Path, placement: Placement) -> SlurmHandle:
        ex = self._executor(Path(run_dir) / JOB_FOLDER)
        try:
            job = ex.submit(WorkerTask(), str(run_dir), placement.device, placement.threads)
        except Exception as exc:  # noqa: BLE001 - sbatch's refusal, for the run's message
            raise BackendError(f"sbatch refused the job: {_first_lines(exc)}") from None
        return SlurmHandle(job, self.poll_interval)

    def _executor(self, folder: Path) -> submitit.Executor:
        s = self.settings
        if self.executor == "local":
            ex = submitit.LocalExecutor(folder, max_num_timeout=s.max_requeues, python=s.python)
            ex.update_parameters(timeout_min=s.time, signal_delay_s=s.signal_delay_s)
            return ex
        try:
            ex = _Executor(folder, max_num_timeout=s.max_requeues, python=s.python)
        except RuntimeError as exc:
            raise BackendError(f"--backend slurm: {exc} (run xling on a Slurm login node)") from None
        params: dict[str, object] = dict(
            job_name=f"xling-{Path(folder).parent.name}",
            time=s.time,
            nodes=1,
            ntasks_per_node=1,
            cpus_per_task=s.cpus_per_run,
            signal_delay_s=s.signal_delay_s,
            stderr_to_stdout=True,
        )
        optional = {
            "partition": s.partition,
            "account": s.account,
            "qos": s.qos,
            "mem": s.mem,
            "gpus_per_node": s.gpus_per_run or None,
            "setup": s.setup or None,
            "additional_parameters": dict(s.sbatch) or None,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        ex.update_parameters(**params)
        return ex


class SlurmJobs:
    """Slurm jobs of runs started by any xling process: one sacct call per query, scancel."""

    def query(self, jobs: dict[str, Path]) -> dict[str, JobInfo]:
        _quiet_submitit()
        watcher = SlurmInfoWatcher(delay_s=POLL_SECONDS)
        for job_id in jobs:
            watcher.register_job(job_id)
        watcher.update()  # one sacct -j a -j b ...; a failing sacct leaves every state UNKNOWN
        out = {}
        for job_id in jobs:
            info = watcher.get_info(job_id, mode="cache")
            state = (info.get("State") or "UNKNOWN").split()[0]
            node = info.get("NodeList") or None
            out[job_id] = JobInfo(state, state in ALIVE_STATES, None if node in (None, "None assigned") else node)
        return out

    def cancel(self, job_id: str, run_dir: Path, running: bool) -> str:
        try:
            subprocess.run(["scancel", job_id], check=True, capture_output=True, text=True)
        except FileNotFoundError:
            raise BackendError("scancel not found: run xling cancel on a Slurm login node") from None
        except subprocess.CalledProcessError as exc:
            raise BackendError(f"scancel {job_id} failed: {(exc.stderr or '').strip() or exc}") from None
        if running:
            return f"scancel {job_id}: the worker checkpoints and stops (`xling resume` continues it)"
        return f"scancel {job_id}: removed from the Slurm queue"


def _quiet_submitit() -> None:
    """On the login node submitit's INFO lines would land in the user's terminal (and its
    progress bars); on the nodes, where this is not called, they stay in the job's log."""
    logging.getLogger("submitit").setLevel(logging.ERROR)


def _first_lines(exc: BaseException, n: int = 3) -> str:
    text = " ".join(line.strip() for line in str(exc).strip().splitlines()[:n] if line.strip())
    return text or type(exc).__name__
