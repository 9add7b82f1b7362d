"""Writing outputs safely: the one implementation of "write atomically" in nmf4d.

Everything nmf4d writes -- the output folder of ``run``/``demo``/``compare-filters``, an
array written by :func:`nmf4d.io.save_dataset`, a synthetic zarr scan, the denoiser's
model -- goes through :class:`AtomicOutput`:

* **Staging.** The output is written inside a hidden staging folder beside it,
  ``.NAME.tmp-STAMP/NAME``, and moved onto ``NAME`` in one rename at the end, so ``NAME``
  is always either absent, the complete previous output or the complete new one. An
  existing folder is swapped with the new one atomically (``renameat2(RENAME_EXCHANGE)``;
  where the filesystem lacks it, two renames, undone by the next run if interrupted)
  and removed afterwards.
* **Ownership.** The staging folder holds a lock file (``.nmf4d-lock``) locked with
  ``fcntl.flock`` for the life of the run and recording the pid, host, start time and
  command. A staging folder whose lock is free (its owner died: ``kill -9``, a crash,
  a power cut) or whose pid is gone on this host is *stale*: the next write to the same
  output removes it (and restores a previous output an interrupted swap had moved
  aside). A staging folder without a lock file was left by an older nmf4d: stale too.
* **One writer per output.** A write into an output that a live run is already writing
  is refused at once (:class:`OutputBusy`, exit status 2): the first claim wins; the
  claim (clean stale folders, look for live owners, create the staging folder) is
  serialised by a short ``flock`` on the parent folder.
* **Modes.** The output gets the modes of the user's umask (0755 folders and 0644 files
  under umask 022), never the 0700 of a private temporary folder.
* **Environment errors** (permission denied, read-only filesystem, disk full, quota,
  name too long) become :class:`OutputError` -- an :class:`~nmf4d.errors.InputError`,
  exit status 2 -- naming the user's path and the reason (``strerror``), never the
  staging path.

Names, owner records, staleness and the renames live in :mod:`nmf4d.staging`.

:func:`check_output` and :func:`check_separate` are the checks made before any work: an
existing output is replaced only with ``overwrite`` and only when it is empty or looks
like an nmf4d output (it holds ``results.h5`` or ``compare.h5``), and the output may not
be, contain or lie inside an input.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
import warnings
from pathlib import Path

from . import staging as _st
from .errors import InputError, OutputWarning
from .staging import (LOCK_NAME, clean_stale, is_stale, live_owner,  # noqa: F401 - API
                      staging_folders)

try:  # POSIX; elsewhere there is no locking
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

#: Files that mark a folder as an nmf4d output (``--overwrite`` replaces only those).
OUTPUT_MARKERS = ("results.h5", "compare.h5")

#: errno values that describe the environment rather than nmf4d (-> exit status 2).
ENVIRONMENT_ERRNOS = frozenset(getattr(errno, n) for n in (
    "EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "ENAMETOOLONG", "EFBIG", "EIO",
    "ENOENT", "ENOTDIR", "EISDIR", "EEXIST", "ENOTEMPTY", "EXDEV", "EMFILE", "ENFILE",
    "ELOOP", "ETXTBSY", "ESTALE", "EBUSY") if hasattr(errno, n))
#: errno values that can only come from writing (they name the output even without a
#: file name attached).
WRITE_ERRNOS = frozenset(getattr(errno, n) for n in ("EROFS", "ENOSPC", "EDQUOT", "EFBIG")
                         if hasattr(errno, n))


class OutputError(InputError):
    """The output cannot be written: names the user's path and the reason."""


class OutputBusy(OutputError):
    """Another live nmf4d run is writing the same output."""


# ------------------------------------------------------------------------- errors
def reason(exc: BaseException) -> str:
    """The reason of an OSError in words (``strerror`` of its errno), else its text."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code > 0:
        try:
            return os.strerror(code)
        except ValueError:  # pragma: no cover
            pass
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:157] + "..." if len(text) > 160 else text


def is_environment_error(exc: BaseException) -> bool:
    """True for an OSError caused by the environment (permissions, space, names...)."""
    return isinstance(exc, OSError) and getattr(exc, "errno", None) in ENVIRONMENT_ERRNOS


def output_error(exc: BaseException, out, action: str = "write") -> OutputError:
    """An :class:`OutputError` for ``exc`` naming the user's output path ``out``."""
    return OutputError(f"cannot {action} output {str(out)!r}: {reason(exc)}")


# ---------------------------------------------------------------------- checks
def _errno_in_text(exc: BaseException) -> int | None:
    """The ``errno = N`` that h5py's RuntimeErrors carry in their text, if any."""
    import re

    m = re.search(r"errno = (\d+)", str(exc))
    return int(m.group(1)) if m else None


@contextlib.contextmanager
def h5_file(path, mode: str = "w"):
    """An HDF5 file (``h5py.File``) built in memory and written to ``path`` in one go
    when the block ends; ``mode="a"`` starts from the file at ``path``.

    For files of bounded size (results.h5, compare.h5): a full disk or a quota then fails
    as a plain OSError of one ``write``, whereas HDF5 failing in the middle of a file can
    leave objects whose clean-up crashes the process (seen on a full tmpfs).
    """
    import io

    import h5py

    if mode not in ("w", "a"):
        raise ValueError(f"mode must be 'w' or 'a', got {mode!r}")
    buf = io.BytesIO(Path(path).read_bytes() if mode == "a" else b"")
    if mode == "a":
        f = h5py.File(buf, "r+")
    else:
        f = h5py.File(f"nmf4d-in-memory-{uuid.uuid4().hex}", "w", driver="core",
                      backing_store=False)
    try:
        yield f
        f.flush()
        image = f.id.get_file_image() if mode == "w" else None
    finally:
        f.close()
    with open(path, "wb") as fh:
        fh.write(image if image is not None else buf.getbuffer())


def real(path) -> Path:
    """Absolute path with every symbolic link resolved (the path need not exist)."""
    return Path(os.path.realpath(os.path.abspath(os.path.expanduser(os.fspath(path)))))


def input_paths(path, *extra) -> list[Path]:
    """Every file or folder an input consists of: the path itself, the ``.hdr`` beside a
    ``.mib``, and ``extra`` paths that are not None (e.g. a reused denoiser model)."""
    out: list[Path] = []
    for p in (path, *extra):
        if p is None:
            continue
        p = Path(os.path.abspath(os.path.expanduser(os.fspath(p))))
        out.append(p)
        if p.suffix.lower() == ".mib":
            out.append(p.with_suffix(".hdr"))
    return out


def check_separate(out, inputs, *, flag: str = "-o") -> None:
    """Refuse an output that is, contains or lies inside one of ``inputs``.

    Paths are compared with symbolic links resolved. The message names both paths.

    Raises
    ------
    OutputError
    """
    o = real(out)
    for path in inputs:
        i = real(path)
        if not os.path.lexists(path) and not i.exists():
            continue
        if o == i:
            why = "is the input"
        elif o in i.parents:
            why = "contains the input"
        elif i in o.parents:
            why = "lies inside the input"
        else:
            continue
        raise OutputError(f"{flag} {str(out)!r} {why} {str(path)!r}: writing there could "
                          "destroy the input; choose an output folder outside it")


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def check_output(out, *, overwrite: bool = False, kind: str = "dir") -> Path:
    """Checks of an output path made before any work; returns it (absolute).

    Refuses: an existing output without ``overwrite``; with ``overwrite``, an existing
    folder that is neither empty nor an nmf4d output (``kind="dir"``), or an existing
    path of the wrong kind; a missing parent folder; a name longer than the filesystem
    allows.

    Raises
    ------
    OutputError
    """
    shown = str(out)
    path = Path(os.path.abspath(os.path.expanduser(os.fspath(out))))
    parent = path.parent
    if not path.name:
        raise OutputError(f"output {shown!r}: not a folder name")
    if not parent.is_dir():
        raise OutputError(f"output {shown!r}: its folder {str(parent)!r} does not exist")
    limit = _name_max(parent)
    if len(os.fsencode(path.name)) > limit:
        raise OutputError(f"cannot write output {shown!r}: {os.strerror(errno.ENAMETOOLONG)} "
                          f"({len(os.fsencode(path.name))} bytes; this filesystem allows "
                          f"{limit})")
    try:
        exists = os.path.lexists(path)
        is_dir = path.is_dir()
    except OSError as exc:
        raise output_error(exc, shown) from None
    if not exists:
        return path
    if not overwrite:
        raise OutputError(f"output {shown!r} exists: choose another -o or pass --overwrite")
    if kind == "dir":
        if not is_dir:
            raise OutputError(f"output {shown!r} exists and is not a folder")
        try:
            names = os.listdir(path)
        except OSError as exc:
            raise output_error(exc, shown, "replace") from None
        if names and not any(m in names for m in OUTPUT_MARKERS):
            raise OutputError(f"output {shown!r} is a folder that is not an nmf4d output (no "
                              f"{' or '.join(OUTPUT_MARKERS)}): not replaced, even with "
                              "--overwrite; choose another -o")
    return path


# ------------------------------------------------------------------- the writer
_LIVE: set = set()          # AtomicOutputs between claim and end, for discard_all
_DISCARDING = 0             # AtomicOutputs removing their staging after an exception


def discarding() -> bool:
    """True while an output is being discarded after an exception (a signal's exception
    is then unwinding: :mod:`nmf4d.exits` does not re-deliver it)."""
    return _DISCARDING > 0


def discard_all() -> None:
    """Remove the staging folders of every output being written by this process (the
    command line's last act when a signal cuts its unwinding short)."""
    for out in list(_LIVE):
        out._discard()


class AtomicOutput:
    """Context manager: write an output under a staging path, install it at the end.

    Parameters
    ----------
    out : str or path-like
        The output: a folder (``kind="dir"``, e.g. ``-o OUT``) or a file or zarr store
        (``kind="file"``).
    overwrite : bool
        Replace an existing output (see :func:`check_output`).
    kind : {"dir", "file"}
        ``"dir"``: the path yielded is an empty folder that becomes ``out``. ``"file"``:
        the path yielded does not exist yet; write a file or a folder there.
    display : str, optional
        The path named in messages (default ``out`` as given).

    The path yielded lies inside the staging folder (``.NAME.tmp-STAMP/NAME``). On an
    exception the staging folder is removed and ``out`` is left as it was; an
    environment error (:data:`ENVIRONMENT_ERRNOS`) raised while writing becomes an
    :class:`OutputError` naming ``out``.

    >>> with AtomicOutput("out", overwrite=True) as tmp:
    ...     (tmp / "results.h5").write_bytes(b"...")
    """

    def __init__(self, out, *, overwrite: bool = False, kind: str = "dir",
                 display: str | None = None):
        if kind not in ("dir", "file"):
            raise ValueError(f"kind must be 'dir' or 'file', got {kind!r}")
        self.display = str(out) if display is None else display
        self.out = check_output(out, overwrite=overwrite, kind=kind)
        self.overwrite = overwrite
        self.kind = kind
        self.stage: Path | None = None
        self.path: Path | None = None
        self.removed: list[Path] = []
        self._lock = None

    # -- claim ---------------------------------------------------------------------
    def __enter__(self) -> Path:
        parent, name = self.out.parent, self.out.name
        with self._discard_on_error():
            with _st.parent_mutex(parent):
                self.removed = clean_stale(self.out)
                busy = live_owner(self.out)
                if busy:
                    since = str(busy.get("started", "?"))[11:19]
                    raise OutputBusy(
                        f"output {self.display!r} is being written by another nmf4d run "
                        f"(pid {busy.get('pid')} on {busy.get('host')}, since {since}); "
                        "wait for it to finish or choose another -o")
                self.stage = self._create_stage(parent, name)
                _LIVE.add(self)
            self.path = self.stage / name
            if self.kind == "dir":
                self.path.mkdir()
        for stage in self.removed:
            warnings.warn(f"removed {stage.name}, left in {str(parent)!r} by an "
                          "interrupted run", OutputWarning, stacklevel=2)
        return self.path

    def _create_stage(self, parent: Path, name: str) -> Path:
        stamp = f"{time.time_ns():016x}{uuid.uuid4().hex[:8]}"
        new = Path(tempfile.mkdtemp(prefix=f"{_st.prefix(name)}.new-{stamp}-", dir=parent))
        try:
            os.chmod(new, 0o777 & ~_st.umask())
            fh = open(new / LOCK_NAME, "w")
            self._lock = fh
            if fcntl is not None:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    pass                                   # a filesystem without locks
            rec = {"pid": os.getpid(), "host": socket.gethostname(), "target": name,
                   "started": _dt.datetime.now().isoformat(timespec="seconds"),
                   "command": _st.command()}
            fh.write(json.dumps(rec))
            fh.flush()
            stage = parent / f"{_st.prefix(name)}.tmp-{stamp}"
            os.rename(new, stage)
        except BaseException:
            self._close_lock()
            shutil.rmtree(new, ignore_errors=True)
            raise
        return stage

    # -- install -------------------------------------------------------------------
    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            global _DISCARDING
            _DISCARDING += 1
            try:
                self._discard()
            finally:
                _DISCARDING -= 1
            if isinstance(exc, OSError) and self._mine(exc):
                raise output_error(exc, self.display) from None
            code = _errno_in_text(exc)
            if code is not None and not isinstance(exc, InputError) and self._mine(exc):
                raise output_error(OSError(code, os.strerror(code)), self.display) from None
            if isinstance(exc, InputError) and self.stage is not None \
                    and str(self.stage) in str(exc):
                text = str(exc).replace(str(self.path), self.display) \
                    .replace(str(self.stage), self.display)
                raise InputError(text) from None
            return False
        with self._discard_on_error():
            self._install()
        self._discard()
        return False

    @contextlib.contextmanager
    def _discard_on_error(self):
        """Discard the stage on any failure; an OSError becomes the user's OutputError."""
        try:
            yield
        except OutputError:
            self._discard()
            raise
        except OSError as exc:
            self._discard()
            raise output_error(exc, self.display) from None

    def _mine(self, exc: BaseException) -> bool:
        """True when an exception is about writing the output."""
        if isinstance(exc, OSError) and getattr(exc, "errno", None) in WRITE_ERRNOS:
            return True
        names = [getattr(exc, "filename", None), getattr(exc, "filename2", None)]
        text = " ".join(str(n) for n in names if n) + " " + str(exc)
        return self.stage is not None and str(self.stage) in text

    def _install(self) -> None:
        assert self.path is not None and self.stage is not None
        if not os.path.lexists(self.path):
            raise OutputError(f"output {self.display!r}: nothing was written")
        if os.path.lexists(self.out):
            if not self.overwrite:
                raise OutputError(f"output {self.display!r} appeared during the run; not "
                                  "overwritten")
            if self.path.is_dir() or os.path.isdir(self.out):
                _st.swap(self.path, self.out, self.stage / ".previous")
            else:
                os.replace(self.path, self.out)
        else:
            try:
                _st.rename_new(self.path, self.out)
            except FileExistsError:
                raise OutputError(f"output {self.display!r} appeared during the run; not "
                                  "overwritten") from None

    def _close_lock(self) -> None:
        if self._lock is not None:
            try:
                self._lock.close()
            except OSError:
                pass
            self._lock = None

    def _discard(self) -> None:
        """Remove the staging folder (and what it holds: a failed output, or the
        previous output after a swap)."""
        if self.stage is not None:
            shutil.rmtree(self.stage, ignore_errors=True)
        self._close_lock()
        _LIVE.discard(self)


def atomic_path(target, *, overwrite: bool = False) -> AtomicOutput:
    """:class:`AtomicOutput` for one file or zarr store (``kind="file"``)."""
    return AtomicOutput(target, overwrite=overwrite, kind="file")


__all__ = ["AtomicOutput", "LOCK_NAME", "OUTPUT_MARKERS", "OutputBusy", "OutputError",
           "atomic_path", "check_output", "h5_file", "check_separate", "clean_stale", "discard_all",
           "discarding",
           "input_paths",
           "is_environment_error", "is_stale", "live_owner", "output_error", "reason",
           "staging_folders"]
