"""Reading the small files a user names (a spec, admin key files) without trusting them to be
small: a read is capped, and what must be a file is refused when it is a device, a FIFO or a
directory (`/dev/zero` would be read forever; a FIFO without a writer would block the open)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["FileTooLarge", "NotAFile", "read_capped"]


class NotAFile(OSError):
    """The path is a directory, device, FIFO or socket where a regular file was wanted."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(f"{path} is {kind}, not a regular file")
        self.path = path
        self.kind = kind


class FileTooLarge(OSError):
    """The file is larger than the cap."""

    def __init__(self, path: Path, limit: int) -> None:
        super().__init__(f"{path} is larger than {limit} bytes")
        self.path = path
        self.limit = limit


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_capped(path: Path, limit: int, *, regular_only: bool = True) -> bytes:
    """At most `limit` bytes of `path`: FileTooLarge past them, NotAFile for what is not a
    regular file (unless `regular_only` is false: a pipe such as `<(...)` is then read, still
    capped), OSError as the system says it."""
    # O_NONBLOCK: opening a FIFO that nobody writes to returns at once instead of blocking;
    # it changes nothing for a regular file.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode) and (regular_only or stat.S_ISDIR(mode)):
            raise NotAFile(path, _kind(mode))
        if not stat.S_ISREG(mode):
            os.set_blocking(fd, True)  # a pipe: wait for its writer, as `cat` would
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise FileTooLarge(path, limit)
    return b"".join(chunks)
