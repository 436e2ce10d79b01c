"""Files the mock keeps on disk: fetched and uploaded media, the samples it serves and rendered videos.

Everything lives under one data directory, named by content (SHA-256), written atomically (a temporary file renamed
into place), so several threads or processes sharing the directory never see half a file and never write one twice.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from ivh_mock.spec.deadline import signals_held

# A temporary file older than this was left by a writer that was killed (no download, upload or render lasts an hour)
STALE_SECONDS = 3600
KINDS = ("media", "videos", "assets", "samples")  # the data directory's folders, one per kind of file
ASIDE = ".sweep-"  # a file a sweep has set aside, to be dropped or put back (`set_aside`)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_writable(folder: str) -> None:
    """Make and remove a file in `folder`, raising the OSError that names it when it cannot be written: a data
    directory the mock may not write (read-only, another user's) had started the server, whose first upload then
    failed (-101000, a traceback in its log) and whose renders never landed. A stop signal waits while the file is
    there: Ctrl-C between the two had left it, and with it the data directory a start undoes as far as it is empty."""
    with signals_held():
        try:
            handle, probe = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        except OSError as error:
            raise OSError(error.errno, error.strerror, folder) from None
        os.close(handle)
        os.unlink(probe)


class Blobs:
    """A content-addressed file store in `root`, a folder per kind (KINDS)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).resolve()  # absolute: Flask reads relative paths against the app package
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(self.root)
        with os.scandir(self._root) as scan:
            entries = list(scan)
        kinds = [entry for entry in entries if entry.name in KINDS]
        for entry in kinds:  # a kind's folder that is a file had started the server, and failed its first write
            if not entry.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), entry.path)
        # a kind's folder linked elsewhere (another disk) is written through, so checked; its stale files are left
        for folder in (self._root, *(entry.path for entry in kinds)):
            _check_writable(folder)
        self._drop_stale_temporaries([entry.path for entry in entries if entry.is_dir(follow_symlinks=False)])

    def _drop_stale_temporaries(self, kinds: list[str]) -> None:
        """Delete what writers killed mid-write left (`.tmp-*`, see `writing`), once older than STALE_SECONDS: no
        write takes that long, so another process or host sharing the directory is not writing it any more. A file a
        sweep killed meanwhile had set aside (`set_aside`) goes back, unless it is there again."""
        cutoff = time.time() - STALE_SECONDS
        for kind in kinds:
            with os.scandir(kind) as entries:
                for entry in entries:
                    with contextlib.suppress(OSError):  # gone meanwhile, or not ours to delete
                        if entry.name.startswith(".tmp-") and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.unlink(entry.path)
                        elif entry.name.startswith(ASIDE) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.rename(entry.path, os.path.join(kind, entry.name[len(ASIDE):]))

    def path(self, kind: str, name: str) -> Path:
        return Path(self._where(kind, name))

    def _where(self, kind: str, name: str) -> str:
        """The file's path as text: joining strings costs a fraction of joining Paths."""
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"bad file name {name!r}")
        return f"{self._root}/{kind}/{name}"

    def put(self, kind: str, data: bytes, name: str | None = None) -> str:
        """Keep `data` (named by its SHA-256 unless `name` is given) and return the name."""
        name = name or digest(data)
        if not os.path.exists(self._where(kind, name)):  # most often kept already: every submission keeps its photo
            with self.writing(kind, name) as temporary:
                temporary.write_bytes(data)
        return name

    @contextlib.contextmanager
    def writing(self, kind: str, name: str) -> Iterator[Path]:
        """Yield a temporary path to write; it becomes `kind/name` when the block ends without an error."""
        target = self.path(kind, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
        os.close(handle)
        try:
            yield Path(temporary)
            os.replace(temporary, target)
        finally:
            Path(temporary).unlink(missing_ok=True)

    def get(self, kind: str, name: str) -> bytes | None:
        try:
            return self.path(kind, name).read_bytes()
        except (FileNotFoundError, ValueError):
            return None

    # A sweep deletes the files no task refers to in two steps, so that a submission storing a task that refers to
    # one meanwhile never loses it: each is set aside (renamed), the tasks are read again, and what one refers to now
    # is put back, the rest dropped. A submission keeps its media again once its task is stored (`put`): a file set
    # aside, or dropped, before it was stored is written anew; one set aside after is put back.
    def set_aside(self, kind: str, name: str) -> bool:
        try:
            os.rename(self._where(kind, name), self._aside(kind, name))
        except (FileNotFoundError, ValueError):  # gone already (another worker's sweep), or no name of a file
            return False
        with contextlib.suppress(FileNotFoundError):  # dated now: a start puts back only what a sweep killed an
            os.utime(self._aside(kind, name))  # hour ago left (a rename keeps an expired file's days-old time)
        return True

    def put_back(self, kind: str, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):  # another worker's sweep had it: the submission writes it anew
            os.rename(self._aside(kind, name), self._where(kind, name))

    def drop_aside(self, kind: str, name: str) -> bool:
        try:
            os.unlink(self._aside(kind, name))
            return True
        except FileNotFoundError:
            return False

    def _aside(self, kind: str, name: str) -> str:
        return f"{self._root}/{kind}/{ASIDE}{name}"  # a name `_where` takes only for the file itself

    def put_json(self, kind: str, name: str, value: Any) -> None:
        self.put(kind, json.dumps(value, sort_keys=True, ensure_ascii=False).encode(), name)

    def get_json(self, kind: str, name: str) -> Any:
        data = self.get(kind, name)
        return None if data is None else json.loads(data)

    def exists(self, kind: str, name: str) -> bool:
        try:
            return self.path(kind, name).exists()
        except ValueError:
            return False

    def delete(self, kind: str, name: str) -> bool:
        try:
            self.path(kind, name).unlink()
            return True
        except (FileNotFoundError, ValueError):
            return False

    def names(self, kind: str) -> list[str]:
        """The names of the files kept of `kind` (not those being written or set aside)."""
        try:
            with os.scandir(f"{self._root}/{kind}") as entries:
                return [entry.name for entry in entries if not entry.name.startswith(".")]
        except FileNotFoundError:  # nothing of that kind kept yet
            return []
