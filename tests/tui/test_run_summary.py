"""The dashboard's row and the run screen's header are one summary of a run, read two ways."""

from __future__ import annotations

from dataclasses import fields

from db import run_panels
from engine.runs.summary import RunSummary
from xling_tui.data_source import DashboardSource


def test_dashboard_row_and_run_header_agree_on_every_shared_field(fixture_db, fixture_config):
    rows = DashboardSource(fixture_config, fixture_db, ingest=False).fetch().runs
    assert {r.status for r in rows} >= {"running", "failed", "done"}
    shared = [f.name for f in fields(RunSummary)]
    for row in rows:
        info = run_panels.run_info(run_panels.Store(fixture_db), row.run_id)
        assert {n: getattr(info, n) for n in shared} == {n: getattr(row, n) for n in shared}, row.label
        assert (info.label, info.progress) == (row.label, row.progress)
