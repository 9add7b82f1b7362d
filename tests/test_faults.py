"""Fault injection: kills at random points, signals, concurrent runs into one output,
full and read-only filesystems, unwritable folders and unreadable inputs.

The rules checked (README "What happens to OUT"): after any fault the output folder is
either absent, the complete previous output or the complete new one; a staging folder
left by a kill is removed by the next run into the same output; SIGTERM and SIGINT clean
up and exit 143 and 130; of two runs into one output the first to claim it wins and the
other exits 2 at once; environment errors exit 2 with one line naming the user's path.

Subprocess runs are small (a 16x16 scan of 32x32 patterns, about 4 s each on two busy
cores, most of it importing); the kill loop is seeded and bounded (5 kills).
"""
from __future__ import annotations

import errno
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

import nmf4d
from nmf4d.cli import main

pytestmark = pytest.mark.usefixtures("one_blas_thread")

SRC = str(Path(nmf4d.__file__).resolve().parents[1])
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    [SRC] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
    OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
TIMEOUT = 120
#: Options of a run that lasts until it is stopped (a final fit of a million iterations).
LONG_ARGS = ("--k", "3", "--tol", "0", "--max-iter", "1000000", "--no-report")


@pytest.fixture(scope="module")
def scan(two_grain_scan):
    return two_grain_scan[1]


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _staging(parent):
    return sorted(p.name for p in Path(parent).iterdir()
                  if p.name.startswith(".") and (".tmp-" in p.name or ".new-" in p.name))


def _complete(out, report=True) -> bool:
    """True when ``out`` is a whole output: a readable results.h5 (and the report)."""
    try:
        with h5py.File(out / "results.h5", "r") as f:
            ok = int(f.attrs["k"]) >= 1 and f["labels"].shape == (16, 16)
    except (OSError, KeyError):
        return False
    if report:
        page = out / "report.html"
        ok = ok and page.is_file() and page.read_text().rstrip().endswith("</html>")
    return ok


def _start(*args):
    preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # shells may ignore it
    return subprocess.Popen([sys.executable, "-m", "nmf4d.cli", *map(str, args)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=preexec)


def _wait_for_staging(parent, proc, timeout=60.0, ignore=()) -> bool:
    """Wait until a (new) staging folder of ``proc`` appears in ``parent``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if any(".tmp-" in n and n not in ignore for n in _staging(parent)):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


# ------------------------------------------------------------------ kills
@pytest.mark.slow
def test_kills_at_random_points_leave_all_or_nothing(scan, tmp_path):
    """5 kills (SIGKILL and SIGTERM alternately) at seeded random delays: after each,
    OUT is absent or complete (the previous one when replacing); SIGTERM leaves no
    staging folder; the next run removes what a SIGKILL left; a final run succeeds."""
    before = _sha(scan)
    out = tmp_path / "out"
    base = ["run", scan, "-o", out, "--k", "3", "--overwrite"]
    t0 = time.monotonic()
    ref = _start(*base)
    _, err = ref.communicate(timeout=TIMEOUT)
    duration = time.monotonic() - t0
    assert ref.returncode == 0, err
    assert _complete(out)
    rng = random.Random(20260101)
    # (signal, when): "start" = a delay after starting (may hit the imports), "claim" =
    # a delay after the staging folder appeared (the analysis and the writing)
    plan = [(signal.SIGKILL, "start"), (signal.SIGTERM, "claim"), (signal.SIGKILL, "claim"),
            (signal.SIGTERM, "start"), (signal.SIGKILL, "claim")]
    seen = []
    for i, (sig, when) in enumerate(plan):
        if i in (1, 2):
            shutil.rmtree(out, ignore_errors=True)         # a fresh output, not a swap
        had_previous = out.exists()
        left = set(_staging(tmp_path))                     # by an earlier SIGKILL
        proc = _start(*base)
        if when == "start":
            time.sleep(rng.uniform(0.3, duration))
        else:
            _wait_for_staging(tmp_path, proc, ignore=left)
            time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=TIMEOUT)
        rc = proc.returncode
        seen.append((sig.name, when, rc))
        assert rc in (0, -signal.SIGKILL, 143, -signal.SIGTERM), err
        assert "Traceback" not in err and "internal error" not in err, err
        if out.exists():
            assert _complete(out), (i, rc, sorted(os.listdir(out)))
        else:
            assert not had_previous, (i, rc)             # the previous output is kept
        if sig == signal.SIGTERM:
            assert _staging(tmp_path) == [], (rc, err)     # SIGTERM cleans up itself
            if rc == 143:
                assert err.strip().splitlines()[-1] == "nmf4d: terminated (SIGTERM)"
    final = _start(*base)
    _, err = final.communicate(timeout=TIMEOUT)
    assert final.returncode == 0, err
    assert _complete(out) and _staging(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert _sha(scan) == before
    print("kills:", seen)


@pytest.mark.parametrize("sig, code, line", [
    (signal.SIGTERM, 143, "nmf4d: terminated (SIGTERM)"),
    (signal.SIGINT, 130, "nmf4d: interrupted")])
def test_signal_cleans_up_and_exits(scan, tmp_path, sig, code, line):
    out = tmp_path / "out"
    proc = _start("run", scan, "-o", out, *LONG_ARGS)
    assert _wait_for_staging(tmp_path, proc), proc.communicate()[1]
    time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1] == line
    assert "Traceback" not in err
    assert not out.exists() and sorted(os.listdir(tmp_path)) == []


def test_staging_left_by_a_kill_is_removed_by_the_next_run(scan, tmp_path):
    out = tmp_path / "out"
    proc = _start("run", scan, "-o", out, *LONG_ARGS)
    assert _wait_for_staging(tmp_path, proc), proc.communicate()[1]
    proc.kill()
    proc.communicate(timeout=TIMEOUT)
    left = _staging(tmp_path)
    assert left and not out.exists()                     # kill -9 cannot clean up
    proc = _start("run", scan, "-o", out, "--k", "2", "--no-report")
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert f"nmf4d: warning: removed {left[0]}" in err
    assert _staging(tmp_path) == [] and _complete(out, report=False)


# ------------------------------------------------------------------ concurrency
def test_run_into_an_output_being_written_exits_2_at_once(scan, tmp_path):
    """This process claims OUT (as a run would); a run into it is refused at once."""
    from nmf4d.outputs import AtomicOutput

    out = tmp_path / "out"
    with AtomicOutput(out) as tmp:
        proc = _start("run", scan, "-o", out, "--k", "2", "--overwrite", "--no-report")
        _, err = proc.communicate(timeout=TIMEOUT)
        (tmp / "results.h5").write_text("first")
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"nmf4d: error: output {str(out)!r} is being written by another nmf4d run (pid "
        f"{os.getpid()} on "), lines
    assert (out / "results.h5").read_text() == "first" and _staging(tmp_path) == []


@pytest.mark.slow
def test_second_run_while_the_first_is_running(scan, tmp_path):
    """Two real runs: the second exits 2 while the first (made long: many iterations)
    runs; the first, terminated afterwards, leaves nothing behind."""
    out = tmp_path / "out"
    first = _start("run", scan, "-o", out, *LONG_ARGS)
    assert _wait_for_staging(tmp_path, first), first.communicate()[1]
    second = _start("run", scan, "-o", out, "--k", "2", "--overwrite", "--no-report")
    _, err2 = second.communicate(timeout=TIMEOUT)
    assert first.poll() is None, "the first run ended too soon"
    first.send_signal(signal.SIGTERM)
    _, err1 = first.communicate(timeout=TIMEOUT)
    assert second.returncode == 2, err2
    lines = err2.strip().splitlines()
    assert len(lines) == 1 and "is being written by another nmf4d run (pid " in lines[0]
    assert first.returncode == 143, err1
    assert not out.exists() and _staging(tmp_path) == []


@pytest.mark.slow
def test_simultaneous_runs_one_wins(scan, tmp_path):
    out = tmp_path / "out"
    procs = [_start("run", scan, "-o", out, "--k", "3", "--no-report") for _ in range(2)]
    results = [(p.wait(timeout=TIMEOUT), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    loser = [err for rc, err in results if rc == 2][0].strip().splitlines()
    assert len(loser) == 1 and ("being written by another nmf4d run" in loser[0]
                                or "exists: choose another -o" in loser[0]), loser
    assert _complete(out, report=False) and _staging(tmp_path) == []


# ------------------------------------------------------------------ filesystems
def _can_mount() -> str | None:
    if os.geteuid() != 0:
        return "mounting a small tmpfs needs root"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "no mount/umount command"
    return None


@pytest.fixture
def tiny_fs(tmp_path):
    why = _can_mount()
    if why:
        pytest.skip(why)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _one_error(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("nmf4d: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert "Traceback" not in err and ".tmp-" not in err and ".new-" not in err, err
    return errors[0]


def test_full_disk(scan, tiny_fs, capsys):
    out = tiny_fs / "out"
    rc = main(["run", str(scan), "-o", str(out), "--k", "2", "-q"])
    line = _one_error(capsys.readouterr().err)
    assert rc == 2
    assert line.startswith("nmf4d: error: cannot write ")     # results.h5 or the report
    assert line.endswith(f" {str(out)!r}: No space left on device"), line
    assert os.listdir(tiny_fs) == []


def test_read_only_filesystem(scan, tiny_fs, capsys):
    r = subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot remount the tmpfs read-only")
    out = tiny_fs / "out"
    t0 = time.perf_counter()
    rc = main(["run", str(scan), "-o", str(out), "--k", "2", "-q"])
    line = _one_error(capsys.readouterr().err)
    assert rc == 2 and time.perf_counter() - t0 < 5           # before any work
    assert line == f"nmf4d: error: cannot write output {str(out)!r}: Read-only file system"


def test_unwritable_folder(scan, tmp_path, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        probe = folder / "probe"
        try:
            probe.write_text("x")
        except PermissionError:
            pass
        else:
            probe.unlink()
            pytest.skip("running as root: chmod 0500 does not stop writes (EACCES is "
                        "simulated in test_permission_denied_simulated)")
        rc = main(["run", str(scan), "-o", str(folder / "out"), "--k", "2", "-q"])
        line = _one_error(capsys.readouterr().err)
        assert rc == 2 and line.endswith("Permission denied") and "locked/out" in line
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS, errno.EDQUOT])
def test_permission_denied_simulated(scan, tmp_path, capsys, monkeypatch, code):
    """What an unwritable folder, a read-only mount or a quota give, also as root."""
    import nmf4d.outputs as outputs

    def refuse(*a, **k):
        raise OSError(code, os.strerror(code), str(tmp_path / ".out.new-abc"))
    monkeypatch.setattr(outputs.tempfile, "mkdtemp", refuse)
    out = tmp_path / "out"
    rc = main(["run", str(scan), "-o", str(out), "--k", "2", "-q"])
    line = _one_error(capsys.readouterr().err)
    assert rc == 2
    assert line == f"nmf4d: error: cannot write output {str(out)!r}: {os.strerror(code)}"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_disk_full_while_writing_simulated(scan, tmp_path, capsys, monkeypatch, code):
    import nmf4d.results as results

    def full(path, *a, **k):
        raise OSError(code, "Can't synchronously write data (errno = 28)")   # as h5py does
    monkeypatch.setattr(results, "write_results", full)
    out = tmp_path / "out"
    rc = main(["run", str(scan), "-o", str(out), "--k", "2", "-q"])
    line = _one_error(capsys.readouterr().err)
    assert rc == 2
    assert line == f"nmf4d: error: cannot write output {str(out)!r}: {os.strerror(code)}"
    assert sorted(os.listdir(tmp_path)) == []


def test_name_too_long(scan, tmp_path, capsys):
    out = tmp_path / ("x" * 300)
    rc = main(["run", str(scan), "-o", str(out), "--k", "2", "-q"])
    line = _one_error(capsys.readouterr().err)
    assert rc == 2 and "File name too long" in line and "xxxx" in line


def test_unreadable_input_names_the_input(scan, tmp_path, capsys, monkeypatch):
    from nmf4d.io import _readers_arrays

    def denied(self, key):
        raise PermissionError(errno.EACCES, "Permission denied", self.path)
    monkeypatch.setattr(_readers_arrays._NpyArray, "__getitem__", denied)
    rc = main(["run", str(scan), "-o", str(tmp_path / "out"), "--k", "2", "-q"])
    line = _one_error(capsys.readouterr().err)
    assert rc == 2
    assert line.startswith(f"nmf4d: error: cannot read input {str(scan)!r}: Permission denied")
    assert sorted(os.listdir(tmp_path)) == []


def test_slow_unwinding_is_cut_short(tmp_path):
    """A signalled command whose unwinding hangs (a pass in flight) is ended after the
    grace period, its staging folder removed, with the signal's exit status."""
    script = f"""
import os, signal, sys, time
import nmf4d.exits as exits
from nmf4d.outputs import AtomicOutput
exits.GRACE_SECONDS = 0.5
with exits.handle_signals():
    out = AtomicOutput({str(tmp_path / 'out')!r})
    out.__enter__()
    try:
        print("claimed", flush=True)
        time.sleep(60)
    except exits.Terminated:
        time.sleep(60)              # unwinding that does not end
"""
    proc = subprocess.Popen([sys.executable, "-c", script], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "claimed"
    assert _staging(tmp_path)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 143 and time.monotonic() - t0 < 10, err
    assert sorted(os.listdir(tmp_path)) == []


def test_shutdown_that_hangs_after_a_signal_is_cut_short(tmp_path):
    """A signal can leave a worker thread that interpreter shutdown waits for forever
    (seen: a thread pool interrupted between starting a worker and registering it);
    run as a program, the command still ends with the signal's status."""
    script = """
import sys, threading, time
import nmf4d.exits as exits
exits.GRACE_SECONDS = 0.5
threading.Thread(target=threading.Event().wait).start()   # never ends, not a daemon
code = 0
with exits.handle_signals(exit_after=True):
    try:
        print("ready", flush=True)
        time.sleep(60)
    except exits.Terminated:
        code = 143
sys.exit(code)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 143 and time.monotonic() - t0 < 10, err


def test_a_swallowed_signal_is_delivered_again(tmp_path):
    """Library code can swallow the exception a signal raises (seen inside an import in
    dask); the signal is delivered again until the command unwinds."""
    script = """
import sys, time
import nmf4d.exits as exits
exits.GRACE_SECONDS, exits.REDELIVER_SECONDS = 30.0, 0.2
with exits.handle_signals() as sig:
    try:
        try:
            print("ready", flush=True)
            time.sleep(60)
        except exits.Terminated:
            pass                                   # swallowed
        time.sleep(60)
    except exits.Terminated:
        print("delivered again", flush=True)
        sys.exit(143)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 143 and out.strip() == "delivered again", err
    assert time.monotonic() - t0 < 5
