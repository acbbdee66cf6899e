"""Output files appear whole or not at all, and never over an input.

``OutputSet`` is the outputs of one command as a small transaction: each output gets a temp file
in its own folder as soon as it is known (an unwritable folder is refused before any work), a
writer fills it, and ``commit`` renames them all into place as the last step. Leaving the
``with`` block any other way (an error, Ctrl-C) deletes the temp files and leaves every output
as it was.

Two commands committing the same outputs at once: each commit holds an exclusive lock on the
folders it renames into (``flock`` on the folder itself, so no lock file is left behind), so
the outputs of one commit are never mixed with those of another; the last to commit wins them
all. What remains: the lock is advisory (only snn-deploy takes it), and a reader that opens one
output before and another after a commit can still see two different runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator


class OutputError(ValueError):
    """An output that cannot be written: a missing or read-only folder, a directory, an input, an output
    named twice."""


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file: the same file when both exist (symlinks and hard links
    included), else the same path once symlinks are resolved."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _new_file_mode() -> int:
    """The permissions an ordinary new file gets (mkstemp's are owner-only)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


# The signals that stop a command: Ctrl-C, and a job runner's or `kill`'s stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """A Ctrl-C (SIGINT) or SIGTERM during the block takes effect when it ends, so the renames all happen or none.

    Only the main thread receives signals; a signal whose handler Python does not own is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    owned = [number for number, handler in previous.items() if handler is not None]
    received = []
    for number in owned:
        signal.signal(number, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for number in owned:
            signal.signal(number, previous[number])
        for number in dict.fromkeys(received):
            signal.raise_signal(number)  # now under its own handler


@contextlib.contextmanager
def _folders_locked(folders: Iterable[Path]) -> Iterator[None]:
    """An exclusive advisory lock on each folder, taken in a fixed order (no deadlock between two commits)."""
    with contextlib.ExitStack() as stack:
        for folder in sorted({Path(f).resolve() for f in folders}):
            fd = os.open(folder, os.O_RDONLY)
            stack.callback(os.close, fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield


class OutputSet:
    """The files one command writes: reserved early, staged as temp files, renamed together by ``commit``.

        with OutputSet(inputs=[graph_path]) as outputs:
            outputs.reserve(json_path)                    # refuses a bad path before any work
            ...
            outputs.stage(json_path, data)                # bytes, or a writer taking the temp path
            outputs.commit()                              # the last step
    """

    def __init__(self, inputs: Iterable[str | os.PathLike] = ()):
        self._inputs: list[Path] = []
        self._temps: dict[Path, Path] = {}  # output -> its temp file
        self.committed: list[Path] = []
        self.protect(*inputs)

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, *exc_info) -> None:
        self.discard()

    def protect(self, *inputs: str | os.PathLike) -> None:
        """Files the command reads: no output may be one of them."""
        self._inputs.extend(Path(p) for p in inputs if Path(p).is_file())

    def reserve(self, path: str | os.PathLike) -> Path:
        """A temp file beside ``path``, created now (an output that cannot be written is refused here),
        for the command to write, directly or through ``stage``."""
        path = Path(path)
        for other in self._inputs:
            if same_file(path, other):
                raise OutputError(f"output {path} is also an input ({other}); refusing to overwrite it")
        for other in self._temps:
            if same_file(path, other):
                raise OutputError(f"{path} is given as two outputs ({other})")
        if path.is_dir():
            raise OutputError(f"output {path} is a directory")
        if not path.parent.is_dir():
            raise OutputError(f"output folder does not exist: {path.parent}")
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc.__class__.__name__} "
                              f"(in {path.parent})") from None
        os.close(fd)
        self._temps[path] = Path(tmp)
        return Path(tmp)

    def stage(self, path: str | os.PathLike, content: bytes | Callable[[Path], object]) -> Path:
        """Write an output's content (bytes, or ``content(temp_path)``) to its temp file, reserving it if need be."""
        path = Path(path)
        tmp = self._temps[path] if path in self._temps else self.reserve(path)
        try:
            if isinstance(content, bytes):
                tmp.write_bytes(content)
            else:
                content(tmp)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        return tmp

    def commit(self) -> None:
        """Rename every reserved temp file into place, under the folders' locks, with Ctrl-C held off."""
        mode = _new_file_mode()
        try:
            with _interrupts_deferred(), _folders_locked(path.parent for path in self._temps):
                for path, tmp in list(self._temps.items()):
                    os.chmod(tmp, mode)
                    os.replace(tmp, path)
                    del self._temps[path]
                    self.committed.append(path)
        except OSError as exc:
            written = ", ".join(map(str, self.committed)) or "none"
            raise OutputError(f"cannot move the outputs into place ({exc.strerror or exc}); "
                              f"written: {written}") from None

    def discard(self) -> None:
        """Delete the temp files not committed."""
        for tmp in self._temps.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self._temps.clear()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path in ``path``'s folder; it replaces ``path`` only if the block succeeds."""
    with OutputSet() as outputs:
        yield outputs.reserve(path)
        outputs.commit()


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    with OutputSet() as outputs:
        outputs.stage(path, data)
        outputs.commit()
