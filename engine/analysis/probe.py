"""Zero-shot downstream probe (the paper's Fig. 1, right).

A classifier is fine-tuned on a task in one language (L1): the last token's
final-LayerNorm state goes through a new linear head, and either the whole model or
only the head is trained, on a copy so the language model itself is untouched. It is
then evaluated on the same task in every language, L1 included. In another language
nothing was fine-tuned on its ids, so its accuracy measures how much of what was
learned in L1 transfers.

Tasks: the built-in one (``engine.data.family.probe_examples``: is the main clause in the
past tense?) on the built-in corpora, or any labelled TSV of ``text<TAB>label`` lines,
one file for every language or one per language.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.config.spec import ProbeConfig
from engine.data.tasks import task_examples
from engine.errors import DataError

# A language index and texts -> model ids (no EOS): how the run's languages tokenise.
Encoder = Callable[[int, list[str]], list[np.ndarray]]


@dataclass
class Examples:
    ids: list[np.ndarray]  # model ids, each starting with its language's EOS
    labels: np.ndarray  # class indices


@dataclass
class ProbeScore:
    task: str
    train_language: str
    language: str
    accuracy: float
    chance: float  # share of the most common class in this test set: what always guessing it scores
    n_examples: int
    train_accuracy: float  # on the L1 training examples after fine-tuning


def build_examples(
    raw: dict[str, list[tuple[str, str]]],
    languages: list[str],
    encode: Encoder,
    eos: Callable[[int], int],
    max_len: int,
    n_train: int,
    n_test: int,
    train_language: str,
) -> tuple[Examples, dict[str, Examples], list[str]]:
    """L1's training examples and every language's test examples, as model ids.

    The test examples are the *last* ``n_test`` of each list so that, for parallel
    tasks (the built-in one, one shared TSV), every language is tested on translations
    of the same sentences and L1's training examples are never among them.
    """
    classes = sorted({label for rows in raw.values() for _, label in rows})
    index = {c: i for i, c in enumerate(classes)}

    def to_examples(lang: str, rows: list[tuple[str, str]]) -> Examples:
        li = languages.index(lang)
        ids = encode(li, [t for t, _ in rows])
        seqs = [np.concatenate([[eos(li)], x])[:max_len] for x in ids]
        return Examples(seqs, np.array([index[y] for _, y in rows], dtype=np.int64))

    def n_test_of(lang: str, rows: list) -> int:
        return min(n_test, len(rows) // 2) if lang == train_language else min(n_test, len(rows))

    l1 = raw[train_language]
    train = to_examples(train_language, l1[: len(l1) - n_test_of(train_language, l1)][:n_train])
    tests = {lang: to_examples(lang, rows[len(rows) - n_test_of(lang, rows) :]) for lang, rows in raw.items()}
    return train, tests, classes


def _batch(seqs: list[np.ndarray], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and each sequence's last position (causal: padding never leaks back)."""
    width = max(len(s) for s in seqs)
    x = np.zeros((len(seqs), width), dtype=np.int64)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
        x[i, len(s) :] = s[-1]
    last = torch.tensor([len(s) - 1 for s in seqs], device=device)
    return torch.from_numpy(x).to(device), last


def _logits(model, head, seqs: list[np.ndarray], device) -> torch.Tensor:
    x, last = _batch(seqs, device)
    states = model.features(x)
    return head(states[torch.arange(len(seqs), device=device), last])


def fine_tune(
    model,
    train: Examples,
    n_classes: int,
    steps: int,
    lr: float,
    batch_size: int,
    finetune: str = "all",
    seed: int = 0,
    interrupt: Callable[[], None] = lambda: None,
):
    """A copy of ``model`` and a new head, trained on ``train``; the original is not touched."""
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    tuned = copy.deepcopy(model).float()
    head = torch.nn.Linear(tuned.cfg.d_model, n_classes).to(device)
    params = list(head.parameters()) + (list(tuned.parameters()) if finetune == "all" else [])
    for p in tuned.parameters():
        p.requires_grad_(finetune == "all")
    opt = torch.optim.Adam(params, lr=lr)
    rng = np.random.default_rng(seed)
    labels = torch.from_numpy(train.labels).to(device)
    tuned.train()
    for _ in range(steps):
        interrupt()
        pick = rng.choice(len(train.ids), min(batch_size, len(train.ids)), replace=False)
        loss = F.cross_entropy(_logits(tuned, head, [train.ids[i] for i in pick], device), labels[pick])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    tuned.eval()
    return tuned, head


@torch.no_grad()
def accuracy(
    model, head, examples: Examples, batch_size: int = 64, interrupt: Callable[[], None] = lambda: None
) -> float:
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(examples.ids), batch_size):
        interrupt()
        seqs = examples.ids[start : start + batch_size]
        pred = _logits(model, head, seqs, device).argmax(dim=-1).cpu().numpy()
        correct += int((pred == examples.labels[start : start + batch_size]).sum())
    return correct / max(1, len(examples.ids))


def run_probe(
    model,
    cfg: ProbeConfig,
    languages: list[str],
    encode: Encoder,
    eos: Callable[[int], int],
    max_len: int,
    family: dict[str, dict] | None = None,
    seed: int = 0,
    score_languages: list[str] | None = None,
    interrupt: Callable[[], None] = lambda: None,
) -> list[ProbeScore]:
    """Fine-tune in ``cfg.train_language`` (default: the first scored language), score each of
    ``score_languages`` (default: all). ``languages`` is the run's list: ``encode``'s index space.
    ``interrupt()`` is called between batches and may raise to abandon the probe (a worker's stop)."""
    scored = score_languages or languages
    train_language = cfg.train_language or scored[0]
    task = cfg.task
    raw = task_examples(task, scored, family, cfg.n_train + cfg.n_test)
    if train_language not in raw:
        raise DataError(f"probe task has no examples in the training language {train_language}")
    train, tests, classes = build_examples(
        raw, languages, encode, eos, max_len, cfg.n_train, cfg.n_test, train_language
    )
    if len(np.unique(train.labels)) < 2:
        raise DataError("probe task: the training examples all have the same label")
    tuned, head = fine_tune(
        model, train, len(classes), cfg.steps, cfg.lr, cfg.batch_size, cfg.finetune, seed, interrupt
    )
    train_acc = accuracy(tuned, head, train, interrupt=interrupt)
    name = task if isinstance(task, str) else "per-language TSV"
    scores = []
    for lang in scored:
        if lang not in tests or not len(tests[lang].ids):
            continue
        ex = tests[lang]
        chance = float(np.bincount(ex.labels).max() / len(ex.labels))
        acc = accuracy(tuned, head, ex, interrupt=interrupt)
        scores.append(ProbeScore(name, train_language, lang, acc, chance, len(ex.ids), train_acc))
    return scores
