"""Old import path of the Slurm backend, kept for jobs queued before the move.

submitit pickles the task it runs on the node by its import path; a job submitted
by xling 0.1 names ``engine.backends_slurm.WorkerTask``, and must still unpickle when
it starts after an upgrade. New code imports ``engine.backends.slurm``.
"""

from engine.backends.slurm import WorkerTask

__all__ = ["WorkerTask"]
