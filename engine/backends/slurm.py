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
- ``xling cancel`` and Ctrl-C: ``scancel --signal=TERM`` reaches the worker, which
  checkpoints and reports ``cancelled`` (``xling resume`` continues it); the job then
  ends by itself. Only a job that outlives a grace period is cancelled outright
  (``engine.backends.slurm_jobs``). submitit's own process ignores SIGTERM.

Job states come from one ``squeue`` (and ``sacct`` for jobs the controller has
forgotten) for all the jobs being followed, at most every ``poll_s`` seconds
(``slurm_jobs.JobWatcher``); a finished job is seen at once from its result file,
without asking Slurm. A job Slurm will never start (its ``--time`` over the
partition's limit) is removed and its run failed with the reason.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import submitit
from submitit.helpers import DelayedSubmission

from engine.backends.base import BackendError, JobInfo, Placement, spawn_worker
from engine.backends.slurm_jobs import JobWatcher, cancel_job, never_starts_message, signal_job
from engine.config.cluster import SlurmSettings
from engine.runs.events import EventLog, Status, read_events
from engine.runs.fold import RunFold
from engine.runs.layout import EVENTS_FILE
from engine.runs.status import RunStatus

JOB_FOLDER = "slurm"
FINISHED_ON_ITS_OWN = (0, 1)  # the worker's exit codes for done and failed (3: stopped, resumable)


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

    def checkpoint(self, run_dir: str, device: str, threads: int | None) -> DelayedSubmission | None:
        """Called by submitit (in its signal handler) on the time-limit/preemption signal,
        before it requeues the job: the worker checkpoints and stops first. A worker that
        had already finished (done) or failed on its own when the signal came has nothing
        to resume: None, and submitit ends the job instead of requeueing it."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            if not _reaped(proc, float(os.environ.get("XLING_CHECKPOINT_WAIT_S", "60"))):
                proc.kill()  # the periodic checkpoint is what the requeued job resumes from
                _reaped(proc, 10.0)
        if (proc is not None and proc.returncode in FINISHED_ON_ITS_OWN) or _ended_on_its_own(Path(run_dir)):
            return None
        with EventLog(Path(run_dir)) as log:
            log.emit(
                Status(
                    Path(run_dir).name,
                    RunStatus.QUEUED,
                    "requeued by Slurm (time limit or preemption); resumes from its last checkpoint",
                )
            )
        return DelayedSubmission(WorkerTask(), run_dir, device, threads)


def _ended_on_its_own(run_dir: Path) -> bool:
    """The run's own log says done or failed. The exit code alone is not enough: Slurm
    sends its signal to every process of the step, and one that reaches a worker after it
    logged done, while the interpreter shuts down (Python restores the default handlers
    then), can kill it; and a child the interrupted poll() had already reaped leaves no
    exit code here. Either way a finished run would be requeued and train again from the
    start (seen once on CI, without its exit code recorded)."""
    fold = RunFold()
    events, _ = read_events(run_dir / EVENTS_FILE)
    for event in events:
        fold.apply(event)
    return fold.status in (RunStatus.DONE, RunStatus.FAILED)


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


class SlurmHandle:
    """A submitted job as the launcher sees it; polling is cheap (the watcher's cached answer)."""

    pid = None

    def __init__(self, job: submitit.Job, watcher: JobWatcher, poll_every: float, request: str) -> None:
        self.job = job
        self.job_id = str(job.job_id)
        self.watcher = watcher
        self.poll_every = poll_every
        self.request = request  # what was asked for, to explain a job Slurm will never start
        self.info: JobInfo | None = None  # Slurm's latest word on the job
        self._next_poll = 0.0
        self._code: int | None = None
        self._reason = ""
        watcher.watch(self.job_id)

    def poll(self) -> int | None:
        if self._code is not None or time.monotonic() < self._next_poll:
            return self._code
        self._next_poll = time.monotonic() + self.poll_every
        if not self.job.paths.result_pickle.exists():
            self.info = self.watcher.info(self.job_id) or self.info
            if self.info is None or self.info.alive:
                return None
        if self.info is not None and self.info.never_starts:
            _quietly(cancel_job, self.job_id)
            self._code = -1
            self._reason = f"{never_starts_message(self.job_id, self.info)}; it asked for {self.request}"
        else:
            self._code, self._reason = _outcome(self.job, self.info)
        self.watcher.forget(self.job_id)
        return self._code

    def terminate(self) -> None:
        """The worker checkpoints and stops; a job with no worker yet (pending) is cancelled."""
        if not _quietly(signal_job, self.job_id):
            _quietly(cancel_job, self.job_id)

    def kill(self) -> None:
        _quietly(cancel_job, self.job_id)  # Slurm kills what is left after its KillWait

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


def _quietly(action: Callable[[str], object], job_id: str) -> bool:
    """Stopping one job must not keep the launcher from stopping the others."""
    try:
        return action(job_id) is not False
    except BackendError:
        return False


def _outcome(job: submitit.Job, info: JobInfo | None) -> tuple[int, str]:
    """The worker's exit code from the job's result, or why the job ended without one."""
    where = f"see {job.paths.stdout}"
    if job.paths.result_pickle.exists():
        try:
            outcome, value = read_result(job.paths.result_pickle)
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, OSError) as exc:
            return 1, f"job {job.job_id}: unreadable result {job.paths.result_pickle} ({exc}); {where}"
        if outcome == "success" and isinstance(value, int) and not isinstance(value, bool):
            return value, ""
        last = (str(value).strip().splitlines() or [str(outcome)])[-1]
        return 1, f"job {job.job_id} failed: {last}; {where}"
    state = info.label if info is not None else "UNKNOWN"
    return -1, f"Slurm job {job.job_id} ended: {state}; {where}"


class _PlainUnpickler(pickle.Unpickler):
    """Loads plain values only: a pickle that names a class or function is refused, not run."""

    def find_class(self, module: str, name: str) -> object:
        raise pickle.UnpicklingError(f"it names {module}.{name}, not a plain value")


def read_result(path: Path) -> tuple[object, object]:
    """submitit's result file: ("success", exit code) or ("error", traceback text). It sits
    in the run folder, so it is read as plain data (submitit's own reader unpickles anything)."""
    with open(path, "rb") as fh:
        outcome, value = _PlainUnpickler(fh).load()
    return outcome, value


class SlurmBackend:
    """``executor="local"`` runs the same jobs through submitit's local executor (tests, dry runs)."""

    name = "slurm"
    poll_interval = 2.0

    def __init__(self, settings: SlurmSettings, executor: str = "slurm") -> None:
        self.settings = settings
        self.executor = executor
        self._local_jobs: dict[str, submitit.Job] = {}
        query = self._local_states if executor == "local" else None
        self.watcher = JobWatcher(1.0, query) if query else JobWatcher(settings.poll_s)
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

    @property
    def request(self) -> str:
        """What each job asks Slurm for, as the messages about a refused job name it."""
        s = self.settings
        parts = [f"partition {s.partition}" if s.partition else "the default partition", f"--time {s.time} min"]
        parts += [f"account {s.account}"] if s.account else []
        parts += [f"QOS {s.qos}"] if s.qos else []
        parts += [_count(s.cpus_per_run, "CPU"), _count(s.gpus_per_run, "GPU")]
        return ", ".join(parts)

    def start(self, run_dir: Path, placement: Placement) -> SlurmHandle:
        ex = self._executor(Path(run_dir) / JOB_FOLDER)
        try:
            job = ex.submit(WorkerTask(), str(run_dir), placement.device, placement.threads)
        except Exception as exc:  # noqa: BLE001 - sbatch's refusal, for the run's message
            raise BackendError(f"sbatch refused the job ({self.request}): {_first_lines(exc)}") from None
        if self.executor == "local":
            self._local_jobs[str(job.job_id)] = job
        return SlurmHandle(job, self.watcher, self.poll_interval, self.request)

    def _local_states(self, job_ids) -> dict[str, JobInfo]:
        """submitit's local executor: a job is its process on this machine."""
        out = {}
        for job_id in job_ids:
            if (job := self._local_jobs.get(job_id)) is not None:
                done = job.done()
                out[job_id] = JobInfo("COMPLETED" if done else "RUNNING", alive=not done)
        return out

    def _executor(self, folder: Path) -> submitit.Executor:
        s = self.settings
        if self.executor == "local":
            local = submitit.LocalExecutor(folder, max_num_timeout=s.max_requeues, python=s.python)
            local.update_parameters(timeout_min=s.time, signal_delay_s=s.signal_delay_s)
            return local
        try:
            ex = submitit.SlurmExecutor(folder, max_num_timeout=s.max_requeues, python=s.python)
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


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _quiet_submitit() -> None:
    """On the login node submitit's INFO lines would land in the user's terminal (and its
    progress bars); on the nodes, where this is not called, they stay in the job's log."""
    logging.getLogger("submitit").setLevel(logging.ERROR)


def _first_lines(exc: BaseException, n: int = 3) -> str:
    text = " ".join(line.strip() for line in str(exc).strip().splitlines()[:n] if line.strip())
    return text or type(exc).__name__
