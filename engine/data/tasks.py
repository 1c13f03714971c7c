"""Labelled downstream tasks, and the files a run reads only at its end (checked at its start).

Kept free of torch so that `xling data prepare` can check them without loading it.
"""

from __future__ import annotations

import numpy as np

from engine.data.recipe import DataRecipe
from engine.errors import DataError

BUILTIN = "builtin:synthetic"


def read_labelled_tsv(path: str) -> list[tuple[str, str]]:
    """(text, label) lines; the label is the last tab-separated field."""
    out = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, start=1):
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                text, sep, label = line.rpartition("\t")
                if not sep or not text.strip() or not label.strip():
                    raise DataError(f"{path}:{lineno}: expected text<TAB>label")
                out.append((text.strip(), label.strip()))
    except OSError as exc:
        raise DataError(f"probe task {path}: {exc.strerror or exc}") from None
    if len({label for _, label in out}) < 2:
        raise DataError(f"probe task {path}: needs at least two distinct labels")
    return out


def task_examples(
    task: str | dict[str, str], languages: list[str], family: dict[str, dict] | None, n: int
) -> dict[str, list[tuple[str, str]]]:
    """Raw (text, label) examples per language, in a fixed order (train first, then test).

    ``family`` maps each language to its builtin:family settings (None for cloned
    builtin:synthetic, which is the family's base language for every clone).
    """
    if task == BUILTIN:
        from engine.data.family import probe_examples

        return {lang: [(t, str(y)) for t, y in probe_examples((family or {}).get(lang) or {}, n)] for lang in languages}
    if isinstance(task, str):
        rows = read_labelled_tsv(task)
        order = np.random.default_rng(0).permutation(len(rows))
        shuffled = [rows[i] for i in order]
        return {lang: shuffled for lang in languages}
    out = {}
    for lang in languages:
        if lang not in task:
            continue
        rows = read_labelled_tsv(task[lang])
        order = np.random.default_rng(0).permutation(len(rows))
        out[lang] = [rows[i] for i in order]
    return out


def check_end_inputs(recipe: DataRecipe, probe_task: str | dict[str, str] | None) -> None:
    """Read the parallel pairs and probe task a run uses at its end, so their errors come first."""
    from engine.data.parallel import parallel_texts

    languages = recipe.languages
    if recipe.parallel is not None and len(languages) > 1:
        parallel_texts(recipe.parallel, recipe, languages[0], languages[1])
    if probe_task is not None:
        task_examples(probe_task, list(languages), recipe.family_settings(), 2)
