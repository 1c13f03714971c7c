"""Entry point of one worker process: ``python -m engine.worker RUN_DIR``.

A worker reads the run's spec.json, trains, and reports only through the run's
event log. SIGTERM / SIGINT / SIGUSR1 / SIGUSR2, or a ``stop.request`` file in the run folder,
ask it to checkpoint and stop (status ``cancelled``);
any exception becomes status ``failed`` with a one-line reason, the traceback going
to the worker's own log file, never to the user's terminal.

On this machine a worker runs with ``--threads`` torch threads, the CPU slots its
launcher took from the host's registry (``engine.launch.slots``); it inherits those
slots' locked files and holds them for its whole life, so they free themselves when it
exits, however it exits. On Slurm or Ray ``--threads`` is what the scheduler granted.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import signal
import sys
import time
import traceback
from pathlib import Path

from engine.runs.events import EventLog, Status
from engine.runs.layout import SPEC_FILE, STOP_FILE
from engine.runs.status import RunStatus


class StopFlag:
    """Set by SIGTERM/SIGINT (a local stop, scancel), by Slurm's time-limit and
    preemption signals (USR1/USR2, whichever submitit asked for), or by a stop request
    file in the run folder (any host that shares it: Ray runs, remote cancels). The
    file is looked at no more than once a second: on a network filesystem a stat costs."""

    def __init__(self, run_dir: Path | None = None) -> None:
        self.requested = False
        self.stop_file = None if run_dir is None else Path(run_dir) / STOP_FILE
        self._next_look = 0.0

    def __call__(self) -> bool:
        if not self.requested and self.stop_file is not None and time.monotonic() >= self._next_look:
            self._next_look = time.monotonic() + 1.0
            self.requested = self.stop_file.exists()
        return self.requested

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True


def failure_reason(exc: BaseException) -> str:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return "out of GPU memory (try a smaller batch_size or model, or fewer runs per GPU)"
    from engine.errors import DiskFull, XlingError

    if not isinstance(exc, DiskFull) and isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        exc = DiskFull(exc.filename or "the disk")
    if isinstance(exc, DiskFull):
        return f"{exc}: free some space, then `xling resume` continues from the last checkpoint"
    if isinstance(exc, XlingError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _say_failure(events: EventLog, run_id: str, reason: str) -> None:
    """The reason into the run's log first, the traceback into worker.log second: with the
    disk full either may fail, and the other must still be tried."""
    try:
        events.emit(Status(run_id, RunStatus.FAILED, reason))
        logged = True
    except OSError:
        logged = False
    with contextlib.suppress(OSError):
        traceback.print_exc()
        if not logged:
            print(f"could not log the failure in {events.path}: {reason}", file=sys.stderr, flush=True)


def run_worker(run_dir: Path, device: str, threads: int | None, stop_after: int | None = None) -> int:
    from engine.config.spec import RunSpec

    run_dir = Path(run_dir)
    spec = RunSpec.from_json((run_dir / SPEC_FILE).read_text(encoding="utf-8"), source=str(run_dir / SPEC_FILE))
    stop = StopFlag(run_dir)
    stop.install()
    with EventLog(run_dir) as events:
        try:
            import torch

            if threads:
                torch.set_num_threads(threads)  # what it was granted, never the machine's every core
            from engine.train import Trainer

            trainer = Trainer(spec, run_dir, device=device, log=lambda m: print(m, flush=True))
            status = trainer.run(events, should_stop=stop, stop_after=stop_after)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the log
            _say_failure(events, spec.run_id, failure_reason(exc))
            return 1
    return 0 if status is RunStatus.DONE else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--stop-after", type=int, default=None, help="stop (resumably) after this step; for tests")
    args = parser.parse_args(argv)
    return run_worker(args.run_dir, args.device, args.threads, args.stop_after)


if __name__ == "__main__":
    sys.exit(main())
