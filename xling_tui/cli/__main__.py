"""``python -m xling_tui.cli``: the same as the ``xling`` command."""

from xling_tui.cli.main import main

main()
