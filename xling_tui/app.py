"""``xling-tui``: the Textual front end (issue 6 builds it; this entry point says so).

Until then it points to the headless commands, which read the same database.
"""

from __future__ import annotations

import sys


def main() -> None:
    print(
        "xling-tui: the Textual interface is not built yet (planned: schedule designer, live run\n"
        "panels, GPU panel). Meanwhile the same results are available headless:\n"
        "  xling run [CONFIG]      train the experiments\n"
        "  xling status            runs, progress, best perplexity per language\n"
        "  xling sql \"SELECT ...\"  query the DuckDB results",
        file=sys.stderr,
    )
    sys.exit(2)
