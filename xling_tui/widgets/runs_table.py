"""The dashboard's runs table: one row per run, filtered, sorted, marked.

Cells are plain Rich text (a block-character progress bar and loss sparkline), so a
row renders in any terminal with 16 colours. Filtering and sorting are pure functions
of the rows, tested without a screen; the widget re-renders only the rows whose
content changed, so a refresh of a large dashboard stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.text import Text

from engine.runs.status import LIVE, RunStatus
from xling_tui.data_source import RunRow
from xling_tui.status_style import attention_rank, status_style
from xling_tui.widgets.cell import cell as as_cell
from xling_tui.widgets.cell_table import CellTable

BAR_WIDTH = 6
SPARK_WIDTH = 10
_BLOCKS = " ▏▎▍▌▋▊▉█"
_SPARKS = "▁▂▃▄▅▆▇█"


# -- formatting ---------------------------------------------------------------------------


def human_count(n: float | None) -> str:
    if n is None:
        return ""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


def human_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def progress_bar(progress: float | None, status: str, width: int = BAR_WIDTH) -> Text:
    """'█████▌   63%': eighth-block resolution, coloured by status."""
    if progress is None:
        return Text("")
    eighths = round(progress * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + (_BLOCKS[part] if part and full < width else "")
    bar = bar.ljust(width)
    text = Text(bar, style=status_style(status))
    text.append(f" {100 * progress:3.0f}%")
    return text


def sparkline(
    values: Sequence[float | None], width: int = SPARK_WIDTH, lo: float | None = None, hi: float | None = None
) -> str:
    """Block-character sparkline of ``values`` resampled to ``width``; gaps stay blank.

    The scale is the data's range unless ``lo``/``hi`` fix it (utilisation: 0-100%).
    """
    values = _fill_gaps(values)
    points = [v for v in values if v is not None]
    if not points:
        return ""
    lo = min(points) if lo is None else lo
    hi = max(points) if hi is None else hi
    n = len(values)
    out = []
    for i in range(min(width, n)):
        chunk = [v for v in values[i * n // min(width, n) : (i + 1) * n // min(width, n)] if v is not None]
        if not chunk:
            out.append(" ")
            continue
        v = sum(chunk) / len(chunk)
        level = 0 if hi == lo else round(min(max((v - lo) / (hi - lo), 0.0), 1.0) * (len(_SPARKS) - 1))
        out.append(_SPARKS[level])
    return "".join(out).rstrip()


def _fill_gaps(values: Sequence[float | None]) -> list[float | None]:
    """Interior gaps (bins no logged step fell in) take the previous value; the tail after
    the last point stays empty, so a running run's line stops where its training is."""
    clean = [v if v is not None and math.isfinite(v) else None for v in values]
    last = max((i for i, v in enumerate(clean) if v is not None), default=-1)
    out: list[float | None] = []
    prev = None
    for i, v in enumerate(clean):
        prev = v if v is not None else prev
        out.append(prev if i <= last else None)
    return out


def best_ppl_text(best: Iterable[tuple[str, float]]) -> str:
    return " ".join(f"{lang} {ppl:.1f}" if ppl < 100 else f"{lang} {ppl:.0f}" for lang, ppl in best)


def device_text(row: RunRow) -> str:
    """Where the run is: device@host, then its scheduler job when a cluster runs it and,
    while the run is not over, the job's state ('cuda:0@node7 slurm 1234 RUNNING'): the
    same facts `xling status` shows."""
    where = (row.device or "") if not row.host else f"{row.device or '?'}@{row.host}"
    if row.job_id and row.backend not in (None, "local"):
        where = f"{where} {row.backend} {row.job_id}".strip()
        if row.job_state and row.status in LIVE:
            where = f"{where} {row.job_state}"
    return where


# -- filtering and sorting ---------------------------------------------------------------


def row_haystack(row: RunRow) -> str:
    parts = [
        row.experiment,
        row.name,
        row.status,
        "waiting" if row.waiting else None,
        row.kind,
        row.device,
        row.host,
        row.job_id,
        row.run_id,
        row.note,
        *row.tags,
        *("#" + t for t in row.tags),
        *(lang for lang, _ in row.best_ppl),
    ]
    return " ".join(p for p in parts if p).lower()


def filter_rows(rows: Iterable[RunRow], text: str, experiment: str | None = None) -> list[RunRow]:
    """Every whitespace-separated term must occur somewhere in the row (name, status, tags
    as ``#tag``, note, device, id, evaluated languages); ``experiment`` keeps that experiment's
    runs only (a run shared by several experiments is in each)."""
    terms = text.lower().split()
    out = []
    for row in rows:
        if experiment is not None and not row.belongs_to(experiment):
            continue
        hay = row_haystack(row)
        if all(t in hay for t in terms):
            out.append(row)
    return out


def _best(row: RunRow) -> float:
    return max((p for _, p in row.best_ppl), default=math.inf)


@dataclass(frozen=True)
class SortKey:
    name: str
    key: Callable[[RunRow], Any]


SORT_KEYS: tuple[SortKey, ...] = (
    SortKey("default", lambda r: 0),
    SortKey("name", lambda r: (r.experiment or "", r.name or "")),
    SortKey(
        "status",
        lambda r: (attention_rank(r.status), r.name or ""),
    ),
    SortKey("progress", lambda r: r.progress if r.progress is not None else -1.0),
    SortKey("tokens/s", lambda r: r.tokens_per_s or 0.0),
    SortKey("best PPL", _best),  # the worst language's best PPL: a run is as good as its weakest
    SortKey("started", lambda r: r.started or math.inf),
)


def sort_rows(rows: list[RunRow], key: str, reverse: bool = False) -> list[RunRow]:
    """Stable, so ties keep the default order (experiment, baselines first, start time)."""
    for k in SORT_KEYS:
        if k.name == key:
            return sorted(rows, key=k.key, reverse=reverse) if key != "default" else list(rows)
    raise KeyError(key)


# -- the widget --------------------------------------------------------------------------

# Most telling first: at 80 columns the table scrolls sideways to the device and tags.
COLUMNS = (
    ("mark", " "),
    ("name", "run"),
    ("status", "status"),
    ("progress", "progress"),
    ("speed", "tok/s"),
    ("eta", "ETA"),
    ("best", "best PPL"),
    ("loss", "loss"),
    ("device", "device"),
    ("tags", "tags"),
)


def row_cells(row: RunRow, marked: bool, with_experiment: bool = False) -> tuple[object, ...]:
    """``with_experiment`` prefixes the name when runs of several experiments are listed."""
    status = Text("waiting" if row.waiting else row.status, style=status_style(row.status))
    tags = " ".join("#" + t for t in row.tags) + (" ✎" if row.note else "")
    return (
        Text("●", style="bold magenta") if marked else " ",
        Text.assemble((f"{row.experiment}/", "dim"), row.name or row.run_id[:8])
        if with_experiment
        else (row.name or row.run_id[:8]),
        status,
        progress_bar(row.progress, row.status),
        human_count(row.tokens_per_s) if row.status == RunStatus.RUNNING else "",
        human_duration(row.eta_seconds),
        best_ppl_text(row.best_ppl),
        Text(sparkline(row.loss_curve), style="cyan"),
        device_text(row),
        tags,
    )


def cell_width(cell: object) -> int:
    return cell.cell_len if isinstance(cell, Text) else cell_len(str(cell))


def column_widths(cells: Iterable[tuple[object, ...]]) -> list[int]:
    """Each column as wide as its widest cell or its label."""
    widths = [cell_len(label) for _, label in COLUMNS]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], cell_width(cell))
    return widths


class RunsTable(CellTable):
    """Rows keyed by run id; ``show`` diffs against what is on screen.

    Column widths are computed here, from the cells, when the table is rebuilt: left to
    DataTable they are measured on an idle event after the rows arrive, and a frame
    painted in between keeps header-wide columns in DataTable's line cache.
    """

    DEFAULT_CSS = """
    RunsTable { height: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._shown: list[str] = []
        self._cells: dict[str, tuple[object, ...]] = {}
        self._widths: list[int] = []
        self._formatted: dict[str, tuple[RunRow, tuple[bool, bool], tuple[object, ...]]] = {}

    def on_mount(self) -> None:
        self._set_columns(column_widths([]))

    def _set_columns(self, widths: list[int]) -> None:
        self.clear(columns=True)
        for (key, label), width in zip(COLUMNS, widths):
            self.add_column(label, key=key, width=width)
        self._widths = widths

    def _cells_of(self, row: RunRow, marked: bool, several: bool) -> tuple[object, ...]:
        """Formatting is most of a refresh's cost: a run whose row object is unchanged
        (the data source keeps it when the run did not move) reuses its cells."""
        key = (marked, several)
        cached = self._formatted.get(row.run_id)
        if cached is not None and cached[0] is row and cached[1] == key:
            return cached[2]
        cells = row_cells(row, marked, several)
        self._formatted[row.run_id] = (row, key, cells)
        return cells

    @property
    def current_run_id(self) -> str | None:
        if not self._shown or self.cursor_row < 0 or self.cursor_row >= len(self._shown):
            return None
        return self._shown[self.cursor_row]

    @property
    def shown_ids(self) -> list[str]:
        return list(self._shown)

    def show(self, rows: Sequence[RunRow], marked: set[str]) -> None:
        """Same runs in the same order and every cell still fits its column: only changed
        cells are updated; otherwise rebuild, keeping the cursor on the run it was on."""
        ids = [r.run_id for r in rows]
        several = len({r.experiment for r in rows}) > 1
        cells = {r.run_id: self._cells_of(r, r.run_id in marked, several) for r in rows}
        changed = [
            (rid, cells[rid])
            for rid in ids
            if not (self._cells.get(rid) is cells[rid] or self._cells.get(rid) == cells[rid])
        ]
        fits = all(cell_width(c) <= w for _, row in changed for c, w in zip(row, self._widths))
        if ids == self._shown and fits:
            for rid, new in changed:
                old = self._cells.get(rid) or (None,) * len(new)
                for (col, _), before, after in zip(COLUMNS, old, new):
                    if before != after:
                        self.update_cell(rid, col, as_cell(after))
            self._cells = cells
            return
        self._formatted = {rid: v for rid, v in self._formatted.items() if rid in cells}
        current = self.current_run_id
        self._set_columns(column_widths(cells.values()))
        for rid in ids:
            self.add_row(*(as_cell(c) for c in cells[rid]), key=rid)  # text as it is (a tag is never markup)
        self._shown, self._cells = ids, cells
        if current in ids:
            self.move_cursor(row=ids.index(current), animate=False)
