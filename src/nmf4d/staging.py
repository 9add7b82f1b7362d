"""Staging folders of :mod:`nmf4d.outputs`: their names, owners and locks, which of them
are stale, the renames that install an output, and the short lock on the parent folder
that serialises claims.

A staging folder of output ``NAME`` is ``.NAME.tmp-STAMP`` (``NAME`` cut to 64
characters) beside it; while it is being set up it is ``.NAME.new-STAMP``. It holds the
lock file :data:`LOCK_NAME` (``flock``-ed by its owner, JSON ``pid``, ``host``,
``target``, ``started``, ``command``), the output being written (``NAME``) and, during a
swap without ``renameat2``, the previous output (``.previous``).
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

try:  # POSIX; elsewhere there is no locking (and no liveness check beyond the pid)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

#: Lock file inside every staging folder.
LOCK_NAME = ".nmf4d-lock"
#: A ``.new-`` folder (a staging folder being set up) is stale after this many seconds.
NEW_STALE_SECONDS = 60.0
PREFIX_CHARS = 64             # of the output's name in a staging folder's name
_MUTEX_SECONDS = 10.0


# -------------------------------------------------------------- renames (Linux)
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100
_libc = None


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2``; False when the system or filesystem does not offer it."""
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    if _libc is None:
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.renameat2  # noqa: B018 - probe the symbol
        except (OSError, AttributeError):
            _libc = False
    if not _libc:
        return False
    rc = _libc.renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags)
    if rc == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, getattr(errno, "ENOTSUP", -1),
                getattr(errno, "EOPNOTSUPP", -1)):
        return False
    raise OSError(code, os.strerror(code), os.fspath(src), None, os.fspath(dst))


def rename_new(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``, failing with FileExistsError if ``dst`` exists."""
    if not _renameat2(src, dst, _RENAME_NOREPLACE):
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(dst))
        os.rename(src, dst)


def swap(new: Path, target: Path, aside: Path) -> None:
    """Put ``new`` at ``target``; the previous ``target`` ends at ``new`` (an atomic
    exchange) or, without one, at ``aside``."""
    if _renameat2(new, target, _RENAME_EXCHANGE):
        return
    os.rename(target, aside)
    os.rename(new, target)


# --------------------------------------------------------------- owners and locks
def prefix(name: str) -> str:
    return f".{name[:PREFIX_CHARS]}"


def umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def owner_record(path: Path) -> dict:
    """The owner recorded in a staging folder's lock file ({} if none or unreadable)."""
    try:
        return json.loads((path / LOCK_NAME).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, OverflowError):
        return True
    return True


def _lock_is_free(lock: Path) -> bool:
    """True when nobody holds the flock of ``lock`` (its owner is gone)."""
    if fcntl is None:  # pragma: no cover
        return False
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)                 # closing releases the lock we may have taken
    return True


def _being_set_up(stage: Path) -> bool:
    """True for a ``.NAME.new-`` folder (a staging folder not yet renamed to ``.tmp-``)."""
    rest = stage.name
    i, j = rest.rfind(".new-"), rest.rfind(".tmp-")
    return i > j


def is_stale(stage: Path) -> bool:
    """True when the staging folder ``stage`` has no live owner."""
    lock = stage / LOCK_NAME
    if not lock.exists():
        if _being_set_up(stage):
            try:
                return time.time() - stage.stat().st_mtime > NEW_STALE_SECONDS
            except OSError:
                return False
        return True                                   # left by an older nmf4d
    if _lock_is_free(lock):
        return True
    rec = owner_record(stage)
    return rec.get("host") == socket.gethostname() and not _pid_alive(rec.get("pid"))


def staging_folders(target: Path) -> list[Path]:
    """Staging folders (and folders moved aside) beside ``target`` that may be its own."""
    parent, name = target.parent, target.name
    pre = prefix(name)
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return []
    found = []
    for e in entries:
        n = e.name
        if n.startswith(pre + ".tmp-") or n.startswith(pre + ".new-") \
                or n.startswith(f".{name}.old-"):
            try:
                if e.is_dir(follow_symlinks=False):
                    found.append(Path(e.path))
            except OSError:
                pass
    return sorted(found)


def clean_stale(target) -> list[Path]:
    """Remove the stale staging folders of ``target``; returns those removed.

    A previous output that an interrupted swap had moved aside (``target`` missing) is
    put back first. Folders of other (live) runs are left alone.
    """
    target = Path(os.path.abspath(os.fspath(target)))
    removed = []
    for stage in staging_folders(target):
        legacy_old = stage.name.startswith(f".{target.name}.old-")
        if legacy_old:
            if not os.path.lexists(target):
                continue                                  # an older nmf4d's swap: keep
        else:
            rec = owner_record(stage)
            if rec.get("target") not in (None, target.name) or not is_stale(stage):
                continue
            aside = stage / ".previous"
            if os.path.lexists(aside) and not os.path.lexists(target):
                try:
                    os.rename(aside, target)              # undo a half-done swap
                except OSError:
                    continue
        shutil.rmtree(stage, ignore_errors=True)
        if not os.path.lexists(stage):
            removed.append(stage)
    return removed


def live_owner(target: Path) -> dict | None:
    """The owner record of a live run writing ``target``, if any."""
    for stage in staging_folders(target):
        if _being_set_up(stage) or stage.name.startswith(f".{target.name}.old-"):
            continue
        rec = owner_record(stage)
        if rec and rec.get("target") == target.name and not is_stale(stage):
            return rec
    return None


@contextlib.contextmanager
def parent_mutex(parent: Path):
    """A short exclusive flock on the parent folder (best effort)."""
    fd = None
    if fcntl is not None:
        try:
            fd = os.open(parent, os.O_RDONLY)
        except OSError:
            fd = None
    if fd is not None:
        deadline = time.monotonic() + _MUTEX_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            except OSError:
                break                                      # no locking here
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


def command() -> str:
    return " ".join(sys.argv)[:500]


__all__ = ["LOCK_NAME", "NEW_STALE_SECONDS", "PREFIX_CHARS", "clean_stale", "command",
           "is_stale", "live_owner", "owner_record", "parent_mutex", "prefix", "rename_new",
           "staging_folders", "swap", "umask"]
