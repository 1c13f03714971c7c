"""One error base: every error meant for the user is an XlingError, and each front end
turns one into its message in one place (the CLI: a red line, exit code 2)."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from typer.testing import CliRunner

from engine.errors import XlingError
from tests.conftest import TINY
from xling_tui.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
SHIMS = {"engine.backends_slurm"}  # old import paths re-export classes defined elsewhere


def _exception_classes() -> list[type[BaseException]]:
    found = []
    for pkg in ("engine", "db", "xling_tui"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            if name in SHIMS or name.endswith("__main__"):
                continue
            module = importlib.import_module(name)
            found += [
                c
                for c in vars(module).values()
                if inspect.isclass(c) and issubclass(c, BaseException) and c.__module__ == name
            ]
    return found


def test_every_public_error_class_derives_from_xling_error() -> None:
    classes = _exception_classes()
    public = [c for c in classes if not c.__name__.startswith("_")]  # _Private ones never leave their module
    assert len(public) >= 15, [c.__name__ for c in public]
    assert [c.__qualname__ for c in public if not issubclass(c, XlingError)] == []


def test_the_cli_prints_a_user_error_whole_and_exits_2(tmp_path: Path, tiny_corpus: Path) -> None:
    """One handler for every command; brackets in the message are text, not Rich markup."""
    toml = tmp_path / "experiments.toml"
    toml.write_text("cluster = 3\n" + TINY.format(corpus=tiny_corpus))
    result = CliRunner().invoke(app, ["run", str(toml), "--backend", "ray", "--db", str(tmp_path / "r.duckdb")])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "([cluster.slurm], [cluster.ray])" in result.output
    assert f"{toml}:1" in result.output and "Traceback" not in result.output


def test_an_unknown_run_id_is_a_user_error_in_every_command(tmp_path: Path) -> None:
    db = str(tmp_path / "r.duckdb")
    for args in (["cancel", "zz"], ["logs", "zz"], ["resume", "zz"]):
        result = CliRunner().invoke(app, [*args, "--db", db])
        assert result.exit_code == 2 and "no run with id 'zz'" in result.output, (args, result.output)
