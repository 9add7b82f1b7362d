"""How a command of the command line ends: exit statuses, one-line errors and warnings,
and signals.

======  ===================================================================================
status  meaning
======  ===================================================================================
0       success
1       an internal error (a bug: ``nmf4d: internal error: ...``; ``NMF4D_DEBUG=1`` shows
        the traceback)
2       bad usage, bad input, or an environment that does not allow the work (permission
        denied, read-only filesystem, disk full, quota, name too long, output busy): one
        line ``nmf4d: error: ...`` naming the path or option at fault, no traceback
130     interrupted (SIGINT, Ctrl-C)
143     terminated (SIGTERM, what job schedulers send)
======  ===================================================================================

On SIGINT or SIGTERM the command unwinds as after an error: the staging folder of its
output is removed and the output is left as it was; a signal whose exception library
code swallowed is delivered again every second. If the process has not ended
:data:`GRACE_SECONDS` later (a pass over the data in flight, a thread that interpreter
shutdown waits for) or a second signal arrives, the staging folders are removed at once
and the process exits with the same status.

Warnings (:class:`nmf4d.errors.NMF4DWarning`, any other, and libraries' logged
warnings) are printed as one line each, ``nmf4d: warning: ...``, once per distinct
message, also with ``-q`` (which silences progress only). numpy's floating-point
``RuntimeWarning`` messages (invalid value, mean of an empty slice) are not shown unless
``NMF4D_DEBUG`` is set. ``-W`` / ``PYTHONWARNINGS`` filters are honoured.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
import time
import warnings

from .errors import ConfigError, InputError, NMF4DWarning

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
#: Seconds a signalled command may take to unwind before it is cut short.
GRACE_SECONDS = 10.0
#: Seconds between re-deliveries of a signal whose exception was swallowed.
REDELIVER_SECONDS = 1.0

EPILOG = ("exit status: 0 success; 2 bad usage, bad input or an unusable environment "
          "(permission, read-only, disk full: one line naming the path); 1 internal error; "
          "130 interrupted (SIGINT); 143 terminated (SIGTERM). Warnings are one line each "
          "('nmf4d: warning: ...'), also with -q.")


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM."""

    def __init__(self, signum: int = signal.SIGTERM):
        self.signum = signum
        super().__init__(f"signal {signum}")


def _one_line(text) -> str:
    return " ".join(str(text).split())


_LINES = {EXIT_TERMINATED: "nmf4d: terminated (SIGTERM)", EXIT_INTERRUPTED: "nmf4d: interrupted"}


def _hard_exit(code: int, say: bool = True) -> None:
    from .outputs import discard_all

    discard_all()
    if say:
        try:
            os.write(2, (_LINES.get(code, f"nmf4d: exit {code}") + "\n").encode())
        except OSError:
            pass
    try:
        sys.stderr.flush()
    except Exception:  # noqa: BLE001
        pass
    os._exit(code)


class _SignalState:
    """What the signal handler and its watchdog share (see :func:`handle_signals`)."""

    def __init__(self):
        self.count = 0
        self.signum = None
        self.code = EXIT_TERMINATED
        self.inside = True
        self.redeliver = False
        self.ended = False

    def ending(self) -> None:
        """The command has caught the exception and is ending: stop re-delivering."""
        self.ended = True


@contextlib.contextmanager
def handle_signals(*, exit_after: bool = False):
    """SIGTERM -> :class:`Terminated`, SIGINT -> KeyboardInterrupt, in the main thread.

    Yields a state whose ``ending()`` the caller calls once it has caught the exception.
    The handler only writes a byte to a pipe and raises; a watchdog thread (started
    here) then re-delivers the signal every :data:`REDELIVER_SECONDS` while the block has
    neither ended nor begun to unwind (library code can swallow an asynchronous exception:
    seen inside an import in dask), and after :data:`GRACE_SECONDS` removes the staging
    folders and ends the process with the signal's status if it is still inside the block
    -- or, with ``exit_after`` (the command line run as a program), if it is still alive
    at all (an interrupted thread pool can leave a worker that interpreter shutdown waits
    for forever).
    """
    state = _SignalState()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    r, w = os.pipe()
    main = threading.main_thread().ident

    def unwinding() -> bool:
        from .outputs import discarding

        return state.ended or discarding() or not state.inside

    def watchdog():
        try:
            woke = os.read(r, 1)
        except OSError:
            return
        finally:
            os.close(r)
        if not woke:                                   # the block ended without a signal
            return
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline - REDELIVER_SECONDS:
            time.sleep(REDELIVER_SECONDS)
            if unwinding():
                break
            state.redeliver = True                 # a real signal, to the main thread:
            signal.pthread_kill(main, state.signum)   # it interrupts a blocking call
        time.sleep(max(0.0, deadline - time.monotonic()))
        if state.inside or exit_after:             # after the block main() has said it
            _hard_exit(state.code, say=state.inside)

    def handler(signum, frame):
        if state.redeliver:                            # the watchdog's, not a new one
            state.redeliver = False
            if state.ended or isinstance(sys.exc_info()[1], (Terminated, KeyboardInterrupt)):
                return                                 # the first one is being handled
        else:
            state.count += 1
            state.signum = signum
            state.code = EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED
            if state.count > 1:
                _hard_exit(state.code)
            try:
                os.write(w, b"!")
            except OSError:
                pass
        if signum == signal.SIGTERM:
            raise Terminated(signum)
        raise KeyboardInterrupt

    threading.Thread(target=watchdog, daemon=True, name="nmf4d-signal-watchdog").start()
    unraisable = sys.unraisablehook

    def quiet(info):
        # The handler's exception raised inside a callback Python cannot raise from (a
        # weakref callback, a __del__) is swallowed and printed as "Exception ignored ...
        # Traceback": not an error of the run, and the watchdog delivers it again.
        if not (state.count and isinstance(info.exc_value, (Terminated, KeyboardInterrupt))):
            unraisable(info)
    sys.unraisablehook = quiet
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for s, h in previous.items():
        if h is not signal.SIG_IGN:                  # an ignored signal stays ignored
            signal.signal(s, handler)
    try:
        yield state
    finally:
        state.inside = False
        sys.unraisablehook = unraisable
        for s, h in previous.items():
            if state.count and exit_after:           # ending: a late re-delivery is moot
                signal.signal(s, lambda *a: None)
            else:
                signal.signal(s, h if h is not None else signal.SIG_DFL)
        os.close(w)                                  # no signal: the watchdog returns


class _LogWarning(UserWarning):
    """A library's logged warning, printed like a warning."""


#: Libraries that print their log warnings with a handler of their own (rosettasciio's
#: goes to stdout, in colour).
_OWN_HANDLERS = ("rsciio",)


@contextlib.contextmanager
def warnings_as_lines(stream=None):
    """Print every warning as one line ``nmf4d: warning: ...`` (each message once)."""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = _one_line(message)
        if category is _LogWarning:
            pass
        elif not issubclass(category, NMF4DWarning):
            text = f"{text} ({category.__name__})"
        if text in seen:
            return
        seen.add(text)
        print(f"nmf4d: warning: {text}", file=stream or sys.stderr)

    class Lines(logging.Handler):          # library log warnings (rosettasciio's) alike
        def emit(self, record):
            try:
                show(record.getMessage(), _LogWarning, "", 0)
            except Exception:  # noqa: BLE001 - logging must never fail a command
                pass

    handler = Lines(logging.WARNING)
    for name in _OWN_HANDLERS:            # the package sets its handler up when imported
        try:
            importlib.import_module(name)  # (rsciio: 5 ms, its logger only)
        except ImportError:
            pass
    quiet = [(lg, lg.handlers[:]) for lg in map(logging.getLogger, _OWN_HANDLERS)]
    for lg, handlers in quiet:             # their own stderr handlers would print twice
        lg.handlers = [h for h in handlers if type(h) is not logging.StreamHandler]
    logging.getLogger().addHandler(handler)
    try:
        with warnings.catch_warnings():
            if not sys.warnoptions:
                if not os.environ.get("NMF4D_DEBUG"):   # floating-point noise of numpy
                    warnings.simplefilter("ignore", RuntimeWarning)
                warnings.simplefilter("always", NMF4DWarning)
            warnings.showwarning = show
            yield
    finally:
        logging.getLogger().removeHandler(handler)
        for lg, handlers in quiet:
            lg.handlers = handlers


def _within(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([os.path.realpath(path), os.path.realpath(folder)]) \
            == os.path.realpath(folder)
    except ValueError:
        return False


def describe(exc: BaseException, *, inputs=()) -> tuple[int, str]:
    """The exit status and the line to print for an exception that ends a command.

    ``inputs``: the paths of the command's inputs, to say "cannot read input" for an
    environment error on one of them.
    """
    from .cli_options import describe_error
    from .outputs import is_environment_error, reason

    if isinstance(exc, Terminated):
        return EXIT_TERMINATED, _LINES[EXIT_TERMINATED]
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, _LINES[EXIT_INTERRUPTED]
    if isinstance(exc, ConfigError):
        from .cli_options import flag_for

        msg = describe_error(exc)
        if flag_for(exc.field) is None and "." not in exc.field:   # a command's own flag
            msg = f"--{exc.field.replace('_', '-')} {exc.value}: {exc.reason}"
        return EXIT_USAGE, f"nmf4d: error: {_one_line(msg)}"
    if isinstance(exc, InputError):
        return EXIT_USAGE, f"nmf4d: error: {_one_line(exc)}"
    if is_environment_error(exc):
        name = exc.filename
        for path in inputs:
            if name and path and _within(str(name), str(path)):
                return EXIT_USAGE, (f"nmf4d: error: cannot read input {str(path)!r}: "
                                    f"{reason(exc)} ({name})")
        where = f"{str(name)!r}: " if name else ""
        return EXIT_USAGE, f"nmf4d: error: {where}{reason(exc)}"
    return EXIT_INTERNAL, (f"nmf4d: internal error: {type(exc).__name__}: "
                           f"{_one_line(exc)[:300]} (set NMF4D_DEBUG=1 for the traceback)")


__all__ = ["EPILOG", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_TERMINATED",
           "EXIT_USAGE", "GRACE_SECONDS", "REDELIVER_SECONDS", "Terminated", "describe", "handle_signals",
           "warnings_as_lines"]
