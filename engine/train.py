"""One training run: the paper's optimiser and LR schedule, checkpoints, resume, events.

Resume is exact: the data order is a pure function of the step (``data.Batches``),
there is no dropout, and a checkpoint holds the model, the optimiser and the loss
accumulators of the current logging interval, so a stopped-and-resumed run logs
the same losses as one that never stopped (on CPU, same seed and thread count).
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine import checkpoint
from engine.analysis.evaluate import evaluate_stream
from engine.config.spec import RunSpec
from engine.data.prepare import prepare_run_data
from engine.data.run_data import RunData
from engine.data.tasks import check_end_inputs
from engine.losses import linear_cross_entropy
from engine.model import GPT, GPTConfig, preset
from engine.precision import AMP_DTYPES, cpu_has_native_bf16, resolve_precision
from engine.runs.events import (
    AlignEmbedding,
    AlignGradient,
    AlignHidden,
    EvalResult,
    EventLog,
    Heartbeat,
    ProbeResult,
    Started,
    Status,
    TokenizerInfo,
    TrainMetric,
)
from engine.runs.layout import FINAL_MODEL_FILE
from engine.runs.status import RunStatus

HEARTBEAT_SECONDS = 5.0


def lr_at(step: int, total_steps: int, lr: float, min_lr: float, warmup: int) -> float:
    """Linear warmup to ``lr``, then cosine decay to ``min_lr`` at the last step."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    span = max(1, total_steps - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))


def eval_steps(total_steps: int, every: float) -> list[int]:
    """Untrained (step 0), every ``every`` of training, and the end."""
    points = {0, total_steps}
    if every > 0:
        k = 1
        while k * every < 1 - 1e-9:
            points.add(round(k * every * total_steps))
            k += 1
    return sorted(points)


@dataclass
class Runtime:
    """How to run, as opposed to what to compute (which is the spec): never hashed."""

    device: str = "cpu"
    compile: bool = False
    precision: str = "fp32"  # what the matmuls run in (engine.precision): fp32, bf16 or fp16
    scaler: bool = False
    fused_loss: bool = False  # engine.losses: the CPU fast path; CUDA gets torch.compile instead

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return AMP_DTYPES.get(self.precision)


def resolve_runtime(spec: RunSpec, device: str, cfg: GPTConfig | None = None) -> Runtime:
    """torch.compile is a GPU path (on CPU only when asked); the precision is
    ``engine.precision``'s choice for this device and model shape."""
    t = spec.train
    cuda = device.startswith("cuda")
    compile_ = t.compile == "on" or (t.compile == "auto" and cuda)
    cfg = cfg or preset(spec.model, spec.data.vocab_size * len(spec.languages), t.context)
    precision = resolve_precision(t.precision, device, cfg, t.batch_size, t.context)
    return Runtime(
        device=device,
        compile=compile_,
        precision=precision,
        scaler=precision == "fp16",
        fused_loss=not cuda and not compile_,
    )


class _StopRequested(Exception):
    """Raised out of training or a long evaluation, alignment or probe loop once a stop is
    asked for; ``Trainer.run`` checkpoints, with what was left undone at that step."""


class Trainer:
    """Owns one run's model, optimiser, data and log; ``run()`` trains to the end or a stop."""

    def __init__(
        self,
        spec: RunSpec,
        run_dir: Path,
        device: str = "cpu",
        data: RunData | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.spec, self.run_dir = spec, Path(run_dir)
        self.say = log
        t = spec.train
        self.B, self.T = t.batch_size, t.context
        torch.manual_seed(spec.seed)
        np.random.seed(spec.seed % (2**32))
        recipe = spec.data_recipe()
        self.family = recipe.family_settings()
        self.data = data or prepare_run_data(recipe, log=log)
        schedule = spec.schedule_obj()
        self.batches = self.data.batches(schedule.sequence_languages(spec.total_steps, self.B, spec.seed), self.T)
        self.eval_languages = [i for i, n in enumerate(schedule.sequence_counts(spec.total_steps, self.B)) if n > 0]
        probe = spec.eval.probe
        check_end_inputs(recipe, probe.task if probe else None)  # a bad parallel or probe file fails now
        model_cfg = preset(spec.model, self.data.vocab_size, self.T)
        self.rt = resolve_runtime(spec, device, model_cfg)
        self.model = GPT(model_cfg).to(self.rt.device)
        cuda = self.rt.device.startswith("cuda")
        self.opt = torch.optim.AdamW(
            self.model.parameters(),
            lr=t.lr,
            betas=t.betas,
            eps=t.eps,
            weight_decay=t.weight_decay,
            fused=cuda or None,
        )
        self.scaler = torch.amp.GradScaler("cuda") if self.rt.scaler else None
        self.forward = torch.compile(self.model) if self.rt.compile else self.model
        self.step = 0
        self._acc = self._new_accumulators()
        self._todo: list[str] = []  # analyses due at this step and not yet done ("eval", "align", "probe")
        self._should_stop: Callable[[], bool] = lambda: False

    # --- checkpointing -----------------------------------------------------

    def _new_accumulators(self) -> dict:
        n = len(self.spec.languages)
        return self._accumulators_from({"loss": 0.0, "count": 0, "lang_sum": [0.0] * n, "lang_count": [0] * n})

    def _accumulators_from(self, state: dict) -> dict:
        """Loss sums stay on the device between log lines, so a step never waits on the GPU."""
        dev = self.rt.device
        return {
            "loss": torch.tensor(state["loss"], dtype=torch.float64, device=dev),
            "count": state["count"],
            "lang_sum": torch.tensor(state["lang_sum"], dtype=torch.float64, device=dev),
            "lang_count": np.array(state["lang_count"], dtype=np.int64),
        }

    def _accumulators_state(self) -> dict:
        acc = self._acc
        return {
            "loss": float(acc["loss"]),
            "count": acc["count"],
            "lang_sum": acc["lang_sum"].tolist(),
            "lang_count": acc["lang_count"].tolist(),
        }

    def save_checkpoint(self) -> None:
        """Plain data only (engine.checkpoint): a resume never unpickles code."""
        state = {
            "step": self.step,
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "acc": self._accumulators_state(),
            "torch_rng": torch.get_rng_state(),
            "run_id": self.spec.run_id,
            "precision": self.rt.precision,
            "todo": list(self._todo),
        }
        if self.scaler:
            state["scaler"] = self.scaler.state_dict()
        checkpoint.save(self.run_dir, state)

    def load_checkpoint(self) -> bool:
        loaded = checkpoint.load(self.run_dir, self.rt.device, self.spec.run_id)
        if loaded is None:
            return False
        for why in loaded.damaged:
            self.say(f"removed a damaged checkpoint ({why}); resuming from {loaded.path.name}")
        state = loaded.state
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        if self.scaler and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        self.step = state["step"]
        self._acc = self._accumulators_from(state["acc"])
        self._todo = list(state.get("todo", []))
        self._keep_precision(state.get("precision"))
        return True

    def _keep_precision(self, saved: str | None) -> None:
        """A resumed run goes on in the precision it started in, so its loss trajectory
        continues; ``auto`` might otherwise choose differently on another machine."""
        if self.spec.train.precision != "auto" or saved in (None, self.rt.precision):
            return
        cuda = self.rt.device.startswith("cuda")
        if saved == "fp32" or (saved == "bf16" and (torch.cuda.is_bf16_supported() if cuda else cpu_has_native_bf16())):
            self.say(f"resuming in {saved}, the precision this run started in")
            self.rt.precision = saved

    # --- the loop ----------------------------------------------------------

    def run(
        self, events: EventLog, should_stop: Callable[[], bool] = lambda: False, stop_after: int | None = None
    ) -> RunStatus:
        """Train until done or stopped; returns the final status (done or cancelled).

        A stop takes effect between steps, or within one batch of an evaluation, alignment
        or probe; the checkpoint then records which of them the step still owes."""
        spec, t = self.spec, self.spec.train
        self._should_stop = should_stop
        resumed = self.load_checkpoint()
        events.emit(
            Started(
                spec.run_id,
                device=self.device_label(),
                host=socket.gethostname(),
                pid=os.getpid(),
                total_steps=spec.total_steps,
                total_tokens=spec.total_tokens,
                resumed_from=self.step if resumed else None,
                threads=torch.get_num_threads() if self.rt.device == "cpu" else None,
                precision=self.rt.precision,
                compiled=self.rt.compile,
            )
        )
        events.emit(self.tokenizer_info())
        evals = set(eval_steps(spec.total_steps, spec.eval.every))
        if not resumed:
            self._todo = self._analyses_due(evals)
        last_beat = tick = time.perf_counter()
        tick_step = self.step
        try:
            self._run_analyses(events)  # a fresh start's step 0, or what a stop left undone
            while self.step < spec.total_steps:
                if should_stop() or (stop_after is not None and self.step >= stop_after):
                    raise _StopRequested
                lr = lr_at(self.step, spec.total_steps, t.lr, t.min_lr, t.warmup)
                self.train_step(lr)
                self.step += 1
                if self.step % t.log_every == 0 or self.step == spec.total_steps:
                    now = time.perf_counter()
                    tps = (self.step - tick_step) * self.B * self.T / max(now - tick, 1e-9)
                    self._emit_metric(events, lr, tps)
                    tick, tick_step = now, self.step
                self._todo = self._analyses_due(evals)
                self._run_analyses(events)
                if self.step % t.checkpoint_every == 0 and self.step < spec.total_steps:
                    self.save_checkpoint()
                if time.perf_counter() - last_beat > HEARTBEAT_SECONDS:
                    events.emit(Heartbeat(spec.run_id, self.step, os.getpid()))
                    last_beat = time.perf_counter()
        except _StopRequested:
            self.save_checkpoint()
            events.emit(
                Status(
                    spec.run_id, RunStatus.CANCELLED, f"stopped; resume continues from step {self.step}", step=self.step
                )
            )
            return RunStatus.CANCELLED
        checkpoint.save_whole(self.model.state_dict(), self.run_dir / FINAL_MODEL_FILE)
        checkpoint.remove(self.run_dir)
        events.emit(Status(spec.run_id, RunStatus.DONE, step=self.step))
        return RunStatus.DONE

    # --- stopping inside analyses -------------------------------------------

    def _analyses_due(self, evals: set[int]) -> list[str]:
        """What the current step owes, in order: its evaluation, alignment, probe."""
        ev, final = self.spec.eval, self.step == self.spec.total_steps
        due = ["eval"] if self.step in evals else []
        at_eval = self.step in evals and ev.alignment_at_evals
        if self.step > 0 and (ev.alignment if final else at_eval):
            due.append("align")
        if final and ev.probe:
            due.append("probe")
        return due

    def _run_analyses(self, events: EventLog) -> None:
        """Each done analysis leaves the list, so a stop mid-way resumes with the rest."""
        run = {"eval": self.evaluate, "align": self.align, "probe": self.probe}
        while self._todo:
            run[self._todo[0]](events)
            self._todo.pop(0)

    def _interrupt(self) -> None:
        """Called between batches of long analysis loops: a stop request ends them there."""
        if self._should_stop():
            raise _StopRequested

    def device_label(self) -> str:
        """'cuda:2' for a worker that the launcher pinned to GPU 2 (it sees it as cuda:0)."""
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if self.rt.device.startswith("cuda") and visible and "," not in visible:
            return f"cuda:{visible}"
        return self.rt.device

    def _autocast(self):
        if self.rt.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=torch.device(self.rt.device).type, dtype=self.rt.amp_dtype)

    def train_step(self, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr
        inputs, targets, langs = self.batches.get(self.step)
        dev = self.rt.device
        x = torch.from_numpy(inputs).to(dev, non_blocking=True)
        y = torch.from_numpy(targets).to(dev, non_blocking=True)
        if self.rt.fused_loss:
            with self._autocast():  # the blocks' matmuls; the output layer and loss stay fp32
                h = self.model.features(x).flatten(0, 1).float()
            tok_loss = linear_cross_entropy(h, self.model.head.weight, self.model.head.bias, y.flatten())
        else:
            with self._autocast():
                logits = self.forward(x)
            tok_loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="none")
        seq_loss = tok_loss.view(x.shape[0], -1).mean(dim=1)
        loss = seq_loss.mean()
        if self.scaler:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.opt)
        else:
            loss.backward()
        if self.spec.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.spec.train.grad_clip)
        if self.scaler:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self._accumulate(seq_loss.detach(), langs)

    def _accumulate(self, seq_loss: torch.Tensor, langs: np.ndarray) -> None:
        acc = self._acc
        losses = seq_loss.double()
        acc["loss"] += losses.mean()
        acc["count"] += 1
        index = torch.from_numpy(langs.astype(np.int64)).to(self.rt.device, non_blocking=True)
        acc["lang_sum"].index_add_(0, index, losses)
        acc["lang_count"] += np.bincount(langs, minlength=len(acc["lang_count"]))

    def _emit_metric(self, events: EventLog, lr: float, tokens_per_s: float) -> None:
        acc = self._accumulators_state()  # the one device sync per log line
        lang_loss = {
            lang: acc["lang_sum"][i] / acc["lang_count"][i]
            for i, lang in enumerate(self.spec.languages)
            if acc["lang_count"][i]
        }
        loss = acc["loss"] / max(acc["count"], 1)
        events.emit(
            TrainMetric(
                self.spec.run_id,
                step=self.step,
                tokens=self.step * self.B * self.T,
                lr=lr,
                loss=loss,
                lang_loss=lang_loss,
                tokens_per_s=tokens_per_s,
            )
        )
        per_lang = " ".join(f"{k} {v:.3f}" for k, v in lang_loss.items())
        self.say(
            f"step {self.step}/{self.spec.total_steps} loss {loss:.3f} ({per_lang}) lr {lr:.2e} "
            f"{tokens_per_s:,.0f} tok/s"
        )
        self._acc = self._new_accumulators()

    def tokenizer_info(self) -> TokenizerInfo:
        info = self.data.info()
        return TokenizerInfo(self.spec.run_id, info["mode"], info["vocab_size"], info["n_anchors"], info["languages"])

    def probe(self, events: EventLog) -> None:
        """The downstream probe: fine-tuned in one language, zero-shot in the others."""
        from engine.analysis.probe import run_probe

        spec = self.spec
        probe = spec.eval.probe
        assert probe is not None  # run() probes only when configured
        trained = [spec.languages[i] for i in self.eval_languages]
        if probe.train_language not in trained:  # a baseline of another language probes its own
            probe = probe.model_copy(update={"train_language": trained[0]})
        scores = run_probe(
            self.model,
            probe,
            spec.languages,
            self.data.encode,
            self.data.eos,
            self.T,
            self.family,
            spec.seed,
            trained,
            interrupt=self._interrupt,
        )
        common: dict[str, Any] = {"run_id": spec.run_id, "step": self.step, "tokens": self.step * self.B * self.T}
        for sc in scores:
            events.emit(
                ProbeResult(
                    **common,
                    task=sc.task,
                    train_language=sc.train_language,
                    language=sc.language,
                    accuracy=sc.accuracy,
                    chance=sc.chance,
                    n_examples=sc.n_examples,
                    train_accuracy=sc.train_accuracy,
                )
            )
            self.say(
                f"probe ({sc.task}) trained in {sc.train_language}, {sc.language}: accuracy "
                f"{sc.accuracy:.3f} (chance {sc.chance:.3f}, {sc.n_examples} examples)"
            )

    def align(self, events: EventLog) -> None:
        """The paper's three alignment analyses, first trained language against each other."""
        if len(self.eval_languages) < 2:
            return
        from engine.analysis.alignment import embedding_similarity, gradient_similarity, hidden_similarity

        spec = self.spec
        seen = self.batches.languages[: self.step]  # what it trained on so far
        counts = self.data.seen_id_counts(seen, self.T, interrupt=self._interrupt)
        common: dict[str, Any] = {"run_id": spec.run_id, "step": self.step, "tokens": self.step * self.B * self.T}
        a = self.eval_languages[0]
        for b in self.eval_languages[1:]:
            self._interrupt()
            text = self.data.alignment_text(a, b, self.T, spec.eval.alignment_sequences)
            if isinstance(text, str):
                self.say(text)
                continue
            pair: dict[str, Any] = {"lang_a": spec.languages[a], "lang_b": spec.languages[b]}
            if counts is not None:  # equivalent ids: only cloned languages have them
                for e in embedding_similarity(self.model, self.data.tables, spec.languages, a, b, counts=counts):
                    events.emit(
                        AlignEmbedding(
                            **common,
                            **pair,
                            matrix=e.matrix,
                            similarity=e.mean,
                            control=e.control,
                            n_ids=e.n_ids,
                            n_anchors=e.n_anchors_excluded,
                            bins=e.bins,
                        )
                    )
            self._interrupt()
            hidden = hidden_similarity(self.model, text, pair["lang_a"], pair["lang_b"], self._interrupt)
            for layer, sim in enumerate(hidden.per_layer):
                events.emit(AlignHidden(**common, **pair, layer=layer, similarity=sim, n_sequences=hidden.n_sequences))
            self._interrupt()
            grads = gradient_similarity(
                self.model,
                torch.from_numpy(text.gradient_a),
                torch.from_numpy(text.gradient_b),
                pair["lang_a"],
                pair["lang_b"],
            )
            for tensor, sim in grads.per_tensor.items():
                events.emit(AlignGradient(**common, **pair, tensor=tensor, similarity=sim))

    def evaluate(self, events: EventLog) -> None:
        ev = self.spec.eval
        for i in self.eval_languages:
            self._interrupt()
            ids, n_chars = self.data.test_ids(i, ev.max_tokens)
            score = evaluate_stream(
                self.model,
                ids,
                ev.context,
                ev.stride,
                batch_size=ev.batch_size,
                device=self.rt.device,
                n_chars=n_chars,
                # on a CPU evaluation stays fp32: PPL of bf16- and fp32-trained runs is measured alike
                autocast_dtype=self.rt.amp_dtype if self.rt.device.startswith("cuda") else None,
                interrupt=self._interrupt,
            )
            events.emit(
                EvalResult(
                    self.spec.run_id,
                    step=self.step,
                    tokens=self.step * self.B * self.T,
                    language=self.spec.languages[i],
                    loss=score.loss,
                    ppl=score.ppl,
                    char_ppl=score.char_ppl,
                    accuracy=score.accuracy,
                    n_tokens=score.n_tokens,
                )
            )
            self.say(
                f"eval step {self.step} {self.spec.languages[i]}: PPL {score.ppl:.2f} "
                f"accuracy {score.accuracy:.3f} ({score.n_tokens} tokens)"
            )
