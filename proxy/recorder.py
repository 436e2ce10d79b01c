"""Recordings: JSON Lines, one record per exchange, one file per day (or per run), rotated by size and bounded in
total. The directory is created 0700 and every file 0600: a recording describes an account's traffic."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from ivh_mock.spec import jsontext

RECORD_LEVELS = 512  # a record nests its bodies' 256 levels (forward.JSON_DEPTH) in a few of its own
# No record the proxy writes is near this long (a body is kept to 256 KiB, a header's value to 8 KiB): a longer line
# is skipped as it is read, never held (a line of 100 MB had taken drift and a replay's start to 354 MB)
LINE_BYTES = 16 * 1_048_576
PREFIX = "ivh-proxy-"
FILE_NAME = re.compile(rf"^{PREFIX}(?P<stem>[0-9TZ-]+)(?:\.(?P<index>\d+))?\.jsonl$")
MiB = 1_048_576


class Recorder:
    """Append records to `directory`; thread-safe. `per` is "day" (UTC) or "run" (one series per Recorder)."""

    def __init__(self, directory: str | Path, *, per: str = "day", max_file_bytes: int = 64 * MiB,
                 max_total_bytes: int = 1024 * MiB, clock=time.time):
        if per not in ("day", "run"):
            raise ValueError(f"per must be 'day' or 'run', got {per!r}")
        if max_file_bytes < 1024 or max_total_bytes < max_file_bytes:
            raise ValueError("max_file_bytes must be at least 1024 and max_total_bytes at least max_file_bytes")
        self.directory = Path(directory)
        made = missing_folders(self.directory)
        try:
            self.directory.mkdir(mode=0o700, parents=True)
            for path in made:  # whatever the umask, the folders made on the way too (they had been 0755)
                os.chmod(path, 0o700)
        except FileExistsError:  # the user's own folder (`--record .`, a shared one) keeps its mode: it had been made
            if not self.directory.is_dir():  # 0700, and `--record /tmp` locked everyone else out of /tmp
                raise
            # one the proxy may not write into is said now, as one it cannot make is: it had been said only as the
            # first exchange went unrecorded, under a banner that said it recorded
            try:
                handle, probe = tempfile.mkstemp(dir=self.directory, prefix=".ivh-proxy-probe-")
            except OSError as error:
                raise OSError(error.errno, f"it cannot be written into ({error.strerror})") from None
            os.close(handle)
            os.unlink(probe)
        self.per, self.max_file_bytes, self.max_total_bytes, self.clock = per, max_file_bytes, max_total_bytes, clock
        self._run = datetime.fromtimestamp(clock(), timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._private: Path | None = None  # the file last made 0600
        self._size = 0
        self._sequence = 0

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (it gets a sequence number `seq`)."""
        with self._lock:
            self._sequence += 1
            record = {"seq": self._sequence, **record}
            try:
                line = (json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + "\n").encode()
            except UnicodeEncodeError:  # a lone surrogate (a JSON \\udfff escape gives one): no UTF-8 holds it, so
                line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()  # all is escaped
            path = self._target(len(line))
            # never through a link (the file named like a recording could be one to a file anywhere), and a file it
            # appends to that was there before (a run of before, copied in by hand) is made 0600 as its own are
            descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                if path != self._private:
                    with contextlib.suppress(OSError):  # another user's file keeps its mode
                        if os.fstat(descriptor).st_mode & 0o077:
                            os.fchmod(descriptor, 0o600)
                    self._private = path
                _append_whole(descriptor, line)
            finally:
                os.close(descriptor)
            self._size += len(line)

    def _stem(self) -> str:
        if self.per == "run":
            return self._run
        return datetime.fromtimestamp(self.clock(), timezone.utc).strftime("%Y%m%d")

    def _target(self, size: int) -> Path:
        stem = self._stem()
        if self._path is None or not self._path.name.startswith(f"{PREFIX}{stem}"):  # a new day, or run
            self._path, self._size = self._free_file(stem, 0, size)
            self._prune()  # the files of earlier days and runs count too
        elif self._size + size > self.max_file_bytes:
            index = int(FILE_NAME.match(self._path.name).group("index") or 0)
            self._path, self._size = self._free_file(stem, index + 1, size)
            self._prune()
        return self._path

    def _free_file(self, stem: str, index: int, size: int) -> tuple[Path, int]:
        while True:
            path = self.directory / (f"{PREFIX}{stem}.jsonl" if index == 0 else f"{PREFIX}{stem}.{index}.jsonl")
            if path.is_symlink():  # not written through: the next name
                index += 1
                continue
            used = path.stat().st_size if path.exists() else 0
            if used == 0 or used + size <= self.max_file_bytes:
                return path, used
            index += 1

    def _prune(self) -> None:
        """Delete the oldest files until they and a full current file fit in max_total_bytes."""
        older = [path for path in recording_files(self.directory) if path != self._path]
        total = sum(path.stat().st_size for path in older)
        for path in older:
            if total + self.max_file_bytes <= self.max_total_bytes:
                break
            total -= path.stat().st_size
            path.unlink()


def _append_whole(descriptor: int, line: bytes) -> None:
    """Append `line` whole, or not at all: a write the disk's end (or a file size limit) cut short had left part of a
    record, and the next record written after the space came back was fused to it, one line no reader takes."""
    start = os.lseek(descriptor, 0, os.SEEK_END)
    rest = memoryview(line)
    try:
        while rest:
            rest = rest[os.write(descriptor, rest):]  # a write may take part of it, and say so
    except OSError:
        with contextlib.suppress(OSError):  # shrinking a file needs no space
            os.ftruncate(descriptor, start)
        raise


def missing_folders(folder: Path) -> list[Path]:
    """`folder` and those above it that do not exist yet, innermost first: what making it makes."""
    return [path for path in (folder, *folder.parents) if not path.exists()]


def recording_files(directory: str | Path) -> list[Path]:
    """Return the recording files of `directory`, oldest first: regular files (a FIFO of a recording's name had held
    drift and replay for ever, waiting for a writer)."""
    found = []
    for path in Path(directory).iterdir():
        match = FILE_NAME.match(path.name)
        if match and path.is_file():
            found.append(((match.group("stem"), int(match.group("index") or 0)), path))
    return [path for _, path in sorted(found)]


def read_records(directory: str | Path) -> Iterator[dict[str, Any]]:
    """Yield every record of every recording in `directory` (or of one file), oldest file first; a line that is not
    UTF-8 JSON (a write cut short, in the middle of a character too) or not a record the proxy writes (an exchange
    or a callback, with its time and request, and the proxy's types where it has the optional fields) is skipped."""
    for path in _files(directory):
        with open(path, "rb") as handle:
            for line, _ in _lines(handle):
                record = _record_of(line)
                if record is not None:
                    yield record


def ordered_records(directory: str | Path, skipped: list[int] | None = None) -> Iterator[dict[str, Any]]:
    """The records `read_records` yields, in the order of their time (then of their sequence numbers), holding in
    memory only where each one is: a recording is read twice rather than held whole (1.6 GB of memory for 200 MB of
    recordings, where the default bound on them is 1 GiB). `skipped` gets the number of lines that are no record
    (blank ones aside), before the first record is yielded."""
    files = _files(directory)
    places = []
    unread = 0
    for number, path in enumerate(files):
        with open(path, "rb") as handle:
            offset = 0
            for line, length in _lines(handle):
                record = _record_of(line)
                if record is not None:
                    sequence = record.get("seq")
                    places.append((record["t"], sequence if is_number(sequence) else 0, number, offset, length))
                elif line.strip() or length > len(line):
                    unread += 1
                offset += length
    if skipped is not None:
        skipped.append(unread)
    places.sort()
    handles: dict[int, Any] = {}
    try:
        for _, _, number, offset, length in places:
            if number not in handles:
                handles[number] = open(files[number], "rb")
            handles[number].seek(offset)
            record = _record_of(handles[number].read(length))
            if record is not None:  # unless rewritten meanwhile
                yield record
    finally:
        for handle in handles.values():
            handle.close()


def _lines(handle: Any) -> Iterator[tuple[bytes, int]]:
    """Each line of `handle` with its length; one longer than LINE_BYTES as b"" (no record), read past in pieces."""
    while line := handle.readline(LINE_BYTES + 1):
        length = len(line)
        if length > LINE_BYTES and not line.endswith(b"\n"):
            while (piece := handle.readline(1_048_576)) and not piece.endswith(b"\n"):
                length += len(piece)
            length += len(piece)
            line = b""
        yield line, length


def _files(directory: str | Path) -> list[Path]:
    directory = Path(directory)
    return [directory] if directory.is_file() else recording_files(directory)


def _record_of(line: bytes) -> dict[str, Any] | None:
    try:  # a line nested deeper than any record is (its bodies are decoded to 256 levels) is none
        record = jsontext.loads(line.decode("utf-8"), RECORD_LEVELS)
    except ValueError:  # UnicodeDecodeError is one
        return None
    return record if _is_record(record) else None


def _is_record(record: Any) -> bool:
    if not (isinstance(record, dict) and record.get("kind") in ("exchange", "callback")
            and isinstance(record.get("request"), dict) and is_number(record.get("t"))):
        return False
    findings = record.get("findings", [])
    return (isinstance(findings, list)
            and all(isinstance(finding, dict) and isinstance(finding.get("kind"), str)
                    and isinstance(finding.get("subject"), (str, int, type(None))) for finding in findings)
            and is_number(record.get("elapsed_ms", 0)) and isinstance(record.get("response") or {}, dict)
            and isinstance(record.get("error") or "", str) and isinstance(record.get("time", ""), str)
            and isinstance(record.get("operation"), (str, type(None)))
            and isinstance(record["request"].get("signals", {}), dict))


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
