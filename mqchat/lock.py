"""One instance per data directory: an exclusive `flock` on `<data dir>/mqchat.lock`.

`mqchat up` and `mqchat store` take it before anything else and hold it for their
lifetime (the kernel releases it when the process ends, however it ends). The file
holds the owner's pid, so a refused start can say who is running.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_FILE = "mqchat.lock"


class AlreadyRunning(RuntimeError):
    """Another process holds the data directory's lock."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        owner = f" (pid {pid})" if pid else ""
        super().__init__(f"another mqchat is already running on this data directory{owner}")


class DataDirLock:
    """The exclusive lock of one data directory, held from `acquire()` until `release()` or process exit."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock at once or raise AlreadyRunning; writes nothing else in the data dir."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise AlreadyRunning(pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the only descriptor releases the flock
        self._fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def held(data_dir: Path) -> bool:
    """True when some process holds the data directory's lock right now."""
    path = data_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None
