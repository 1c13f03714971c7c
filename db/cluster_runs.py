"""Cluster runs the database shows as queued or running, checked against their scheduler.

``xling status`` and the TUI's poll call this: one scheduler query for all of them
(``engine.launch.state.reconcile``) logs each job's state as it changes and marks the
runs whose job ended without a word from the worker. Only such runs are read, so an
idle database costs no scheduler call.
"""

from __future__ import annotations

from pathlib import Path

from db.store import Store


def reconcile_cluster_runs(store: Store) -> bool:
    """Asks the schedulers about every cluster run the database shows as queued or
    running; True when there were any (their logs may have grown: ingest them)."""
    from engine.launch.state import reconcile, state_of

    rows = store.query(
        "SELECT run_dir FROM runs WHERE backend IN ('slurm', 'ray') "
        "AND status IN ('queued', 'running') AND run_dir IS NOT NULL"
    ).rows
    states = []
    for (run_dir,) in rows:
        try:
            states.append(state_of(Path(run_dir)))
        except (OSError, ValueError):
            continue  # a folder removed meanwhile; the next ingest drops it
    reconcile(states)
    return bool(states)
