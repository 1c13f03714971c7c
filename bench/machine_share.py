"""Sharing one machine: several `xling run` sessions at once, and a foreign torch job beside.

Target (issue 17): N `xling run` sessions started together (each its own results folder,
the same tiny experiment) take <= 1.10x the wall time of the same sessions run one
after the other, for N = 2 and 3. Before the host's CPU slot registry each session gave
its worker every core and torch threads thrashed (2.86x measured for two `quick`s); that
old behaviour is timed in the same run for comparison (each session with a registry of
its own, so none sees the others).

Also: one worker's tokens/s with a foreign 2-thread torch process running beside it,
against alone, with foreign load counted (the worker is granted fewer threads) and
without (XLING_CPUS fixed: every core, as before).

    python bench/machine_share.py [--sessions 2,3] [--tokens 100000] [--skip-foreign]

Run it alone on the machine (`flock /work/heavy.lock python bench/machine_share.py`);
the load average is printed, and each comparison is run side by side in one go.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

EXPERIMENT = """\
[experiments.share]
languages = ["EN1", "EN2"]
model = "cpu-xs"
tokens = {tokens}
baselines = [1.0]
data = {{ vocab_size = 512 }}
train = {{ batch_size = 16, context = 64, warmup = 20, log_every = 10 }}
eval = {{ context = 64, stride = 16, max_tokens = 5000, every = 0.5 }}

[[experiments.share.schedules]]
name = "90/10"
mix = {{ EN1 = [90], EN2 = [10] }}
"""

FOREIGN = """\
import torch, time
torch.set_num_threads(2)
a = torch.randn(1024, 1024)
end = time.time() + 3600
while time.time() < end:
    a = torch.tanh(a @ a / 32)
"""


def load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def session(toml: Path, db: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "xling_tui.cli", "run", str(toml), "--db", str(db), "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )


def finish(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        out = p.communicate()[0]
        if p.returncode != 0:
            raise SystemExit(f"xling run failed ({p.returncode}):\n{out}")


def back_to_back(toml: Path, dbs: list[Path], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    for db in dbs:
        finish([session(toml, db, env)])
    return time.perf_counter() - t0


def together(toml: Path, dbs: list[Path], envs: list[dict[str, str]]) -> float:
    t0 = time.perf_counter()
    finish([session(toml, db, env) for db, env in zip(dbs, envs)])
    return time.perf_counter() - t0


def started_threads(db: Path) -> list[int]:
    out = []
    for events in sorted(db.with_name(db.stem + ".runs").glob("runs/*/events.jsonl")):
        for line in events.read_text().splitlines():
            e = json.loads(line)
            if e["kind"] == "started":
                out.append(e.get("threads"))
    return out


def tokens_per_s(db: Path) -> float:
    rates = []
    for events in db.with_name(db.stem + ".runs").glob("runs/*/events.jsonl"):
        rates += [e["tokens_per_s"] for e in map(json.loads, events.read_text().splitlines()) if e["kind"] == "train"]
    return statistics.median(rates[1:] or rates)


def sharing(work: Path, toml: Path, counts: list[int], base: dict[str, str]) -> None:
    registry = work / "slots-shared"
    shared = base | {"XLING_CPU_SLOTS": str(registry)}
    finish([session(toml, work / "warm.duckdb", shared)])  # tokenizer cache and imports warm
    print(f"tiny experiment: {toml}; load average before: {load()}")
    for n in counts:
        tag = f"n{n}"
        seq = back_to_back(toml, [work / f"{tag}-seq-{i}.duckdb" for i in range(n)], shared)
        new = together(toml, [work / f"{tag}-new-{i}.duckdb" for i in range(n)], [shared] * n)
        every_core = {"XLING_CPUS": str(os.cpu_count())}
        own = [base | every_core | {"XLING_CPU_SLOTS": str(work / f"slots-{tag}-{i}")} for i in range(n)]
        old = together(toml, [work / f"{tag}-old-{i}.duckdb" for i in range(n)], own)
        print(
            f"{n} sessions: back to back {seq:6.1f} s | together, shared slots {new:6.1f} s = {new / seq:4.2f}x "
            f"(target <= 1.10x) | together, each every core (before) {old:6.1f} s = {old / seq:4.2f}x "
            f"| load average {load()}"
        )


def foreign(work: Path, toml: Path, base: dict[str, str]) -> None:
    shared = base | {"XLING_CPU_SLOTS": str(work / "slots-foreign")}
    every_core = shared | {"XLING_CPUS": str(os.cpu_count())}
    alone_db, beside_db, old_db = (work / f"{k}.duckdb" for k in ("alone", "beside", "beside-old"))
    finish([session(toml, alone_db, shared)])
    job = subprocess.Popen([sys.executable, "-c", FOREIGN])
    try:
        time.sleep(2.0)  # the foreign job at full speed before xling looks at the load
        finish([session(toml, beside_db, shared)])
        finish([session(toml, old_db, every_core)])
    finally:
        job.kill()
        job.wait()
    alone, beside, old = tokens_per_s(alone_db), tokens_per_s(beside_db), tokens_per_s(old_db)
    print(
        f"worker alone {alone:9,.0f} tok/s on {started_threads(alone_db)} threads | beside a 2-thread torch job: "
        f"{beside:9,.0f} tok/s on {started_threads(beside_db)} threads = {beside / alone:4.2f}x of alone "
        f"| every core regardless (before) {old:9,.0f} tok/s on {started_threads(old_db)} = {old / alone:4.2f}x "
        f"| load average {load()}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", default="2,3", help="how many sessions at once, comma-separated")
    ap.add_argument("--tokens", type=int, default=100_000, help="the tiny experiment's token budget")
    ap.add_argument("--foreign-tokens", type=int, default=300_000, help="budget of the run timed beside a foreign job")
    ap.add_argument("--skip-foreign", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="xling-share-"))
    base = dict(os.environ, XLING_CACHE=str(work / "cache"), PYTHONPATH=str(ROOT))
    base.pop("XLING_CPUS", None)
    toml = work / "experiments.toml"
    toml.write_text(EXPERIMENT.format(tokens=args.tokens))
    print(f"{os.cpu_count()} cores; results under {work}")
    sharing(work, toml, [int(n) for n in args.sessions.split(",")], base)
    if not args.skip_foreign:
        one = work / "one.toml"
        one.write_text(EXPERIMENT.format(tokens=args.foreign_tokens).replace("baselines = [1.0]", "baselines = []"))
        foreign(work, one, base)


if __name__ == "__main__":
    main()
