"""Labelled downstream tasks, and the files a run reads only at its end (checked at its start).

Kept free of torch so that `xling data prepare` can check them without loading it.
"""

from __future__ import annotations

import numpy as np

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
    task: str | dict, languages: list[str], family: dict[str, dict] | None, n: int
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


def parallel_config(spec) -> dict | None:
    """The run's parallel sentences: as configured, or generated when every corpus is the family's."""
    data = spec.data
    if data.get("parallel"):
        return data["parallel"]
    corpora = data.get("corpora") or {}
    if corpora and all(c["path"] == "builtin:family" for c in corpora.values()):
        return {"path": "builtin:family", "max_pairs": spec.eval["alignment_sequences"]}
    return None


def family_settings(spec) -> dict[str, dict] | None:
    """Each language's builtin:family settings (real languages), for the built-in probe task."""
    corpora = spec.data.get("corpora")
    if not corpora:
        return None
    return {lang: corpora[lang].get("family") or {} for lang in spec.languages}


def check_end_inputs(spec) -> None:
    """Read the parallel pairs and probe task a run uses at its end, so their errors come first."""
    from engine.data.parallel import parallel_texts

    par = parallel_config(spec) if spec.data.get("kind") == "real" else None
    if par is not None and len(spec.languages) > 1:
        parallel_texts(par, spec.languages, spec.data["corpora"], spec.languages[0], spec.languages[1])
    probe = spec.eval.get("probe")
    if probe:
        task_examples(probe.get("task", BUILTIN), spec.languages, family_settings(spec), 2)
