"""What a long analysis tells its user: progress bars, block counts and stage events.

One :class:`Progress` object is passed explicitly to every stage and to the block
sources (:mod:`nmf4d.execution.sources`) that run the per-block kernels. A source calls
:meth:`Progress.block_done` after each block it computes; a stage opens a counting bar
(:meth:`Progress.counting`) around the passes it wants shown, and the blocks of any
source advance the innermost counting bar that is open. Stage events
(:meth:`Progress.event`) go to an optional log callback (the command line prints them).

Bars are drawn on a terminal only; in a log or a pipe a bar that runs longer than
``log_interval`` seconds (default 30) prints a plain line ``desc: n/total unit`` each
interval instead, so every long stage shows progress there too.
"""
from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable


class _Null:
    """A silent bar that still counts (stages and tests can read ``n``)."""

    def __init__(self):
        self.n = 0

    def update(self, n=1):
        self.n += n


class _LogBar(_Null):
    """A bar for logs and pipes: one plain line every ``interval`` seconds."""

    def __init__(self, desc: str, total, unit: str, interval: float, stream=None):
        super().__init__()
        self.desc, self.total, self.unit, self.interval = desc, total, unit, interval
        self.stream = stream
        self.t0 = self.last = time.monotonic()
        self.printed = False

    def update(self, n=1):
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self.line(now)

    def line(self, now=None):
        el = (now or time.monotonic()) - self.t0
        of = f"/{self.total}" if self.total is not None else ""
        print(f"[{el:6.1f}s in] {self.desc}: {self.n}{of} {self.unit}",
              file=self.stream or sys.stderr, flush=True)
        self.printed = True


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """Progress bars (tqdm, on stderr) and stage events for one analysis.

    Parameters
    ----------
    bars : bool
        Show tqdm bars (default False: silent).
    log : callable, optional
        ``log(stage, info)`` for stage events (e.g. ``"select"`` with the selection).
    tty_only : bool
        Bars only on a terminal (default), so logs and pipes get no control codes; there
        a long bar prints a plain line every ``log_interval`` seconds instead.
    log_interval : float
        Seconds between the plain progress lines of a bar in a log or pipe.
    """

    def __init__(self, *, bars: bool = False, log: Callable[[str, Any], None] | None = None,
                 tty_only: bool = True, log_interval: float = 30.0):
        self.bars = bars
        self.log_interval = log_interval
        self.log = log
        self.tty_only = tty_only
        self._counting: list = []
        self._lock = threading.Lock()

    @contextmanager
    def bar(self, desc: str, total: int | None, unit: str = "it"):
        """Context yielding a bar with ``update(n)``; a silent stand-in when disabled."""
        if not self.bars:
            yield _Null()
            return
        if self.tty_only and not _is_tty(sys.stderr):
            b = _LogBar(desc, total, unit, self.log_interval)
            yield b
            if b.printed:
                b.line()
            return
        from tqdm.auto import tqdm
        # disable=None: bars on a terminal only
        with tqdm(total=total, desc=desc, unit=unit, leave=True, dynamic_ncols=True,
                  disable=None if self.tty_only else False) as t:
            yield t
            if total is not None and t.n < total and not t.disable:
                t.total = t.n      # stopped early (converged): show the count reached
                t.refresh()

    @contextmanager
    def counting(self, desc: str, total: int | None, unit: str = "block"):
        """A bar advanced by :meth:`block_done` while inside (the innermost one open).

        The bar is closed on exit, exceptions included.
        """
        with self.bar(desc, total, unit) as b:
            with self._lock:
                self._counting.append(b)
            try:
                yield b
            finally:
                with self._lock:
                    self._counting.remove(b)

    def block_done(self) -> None:
        """One block computed (thread-safe; called by the sources)."""
        with self._lock:
            if self._counting:
                self._counting[-1].update(1)

    def event(self, stage: str, info: Any = None) -> None:
        """A stage finished (or reached a point worth telling): passed to ``log``."""
        if self.log is not None:
            self.log(stage, info)


#: A silent progress object (no bars, no events).
SILENT = Progress()


class StageTimer:
    """Wall-clock seconds per stage, measured by one clock.

    >>> timer = StageTimer()
    >>> with timer("sweep"):
    ...     pass
    >>> timer.add_parts("sweep", {"sketch": 0.1})   # recorded as "sweep: sketch"
    """

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        import time

        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t

    def add_parts(self, stage: str, parts: dict) -> None:
        """Record the parts of a stage as ``"stage: part"``."""
        for key, val in parts.items():
            self.seconds[f"{stage}: {key}"] = float(val)
