"""Where a worker process runs: this machine (local), Slurm (through submitit) or Ray,
behind one small protocol, with a registry for runs started by an earlier process."""
