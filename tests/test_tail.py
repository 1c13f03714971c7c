"""Following a file that grows: the one reader behind the launcher, the ingest, `xling logs`
and the TUI's log view."""

from __future__ import annotations

import json
from pathlib import Path

from engine.runs.events import read_events
from engine.runs.tail import LogTail, read_new


def test_a_tail_returns_what_was_appended_since_the_last_read(tmp_path: Path) -> None:
    path = tmp_path / "worker.log"
    tail = LogTail(path)
    assert tail.read() is None  # no file yet
    path.write_bytes(b"one\n")
    assert tail.read() == b"one\n"
    assert tail.read() == b""
    with open(path, "ab") as fh:
        fh.write(b"two")
    assert tail.read() == b"two"


def test_a_replaced_file_is_read_again_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "worker.log"
    path.write_bytes(b"a long first life\n")
    tail = LogTail(path)
    tail.read()
    path.write_bytes(b"new\n")
    assert tail.read() == b"new\n"


def test_last_keeps_the_end_of_a_long_file(tmp_path: Path) -> None:
    path = tmp_path / "worker.log"
    path.write_bytes(b"x" * 100 + b"END")
    tail = LogTail(path, last=5)
    assert tail.read() == b"xxEND"
    with open(path, "ab") as fh:
        fh.write(b"+more")
    assert tail.read() == b"+more"  # only the first read is cut
    assert read_new(path, 0).data.startswith(b"x" * 100)


def test_events_wait_for_their_newline_and_survive_a_replaced_log(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"kind": "queued", "run_id": "a-long-run-id"}) + "\n" + '{"kind": "sta')
    events, offset = read_events(path)
    assert [e["kind"] for e in events] == ["queued"] and offset == path.read_bytes().index(b"{", 1)
    assert read_events(path, offset) == ([], offset)  # a torn line waits
    path.write_text(json.dumps({"kind": "started"}) + "\n")  # shorter than the offset: replaced
    events, new_offset = read_events(path, offset)
    assert [e["kind"] for e in events] == ["started"] and new_offset == path.stat().st_size
