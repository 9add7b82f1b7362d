"""Tests of nmf4d.execution.progress: bars, block counting, events, the stage timer."""
import threading
import time

from nmf4d.execution import Progress, StageTimer


def test_progress_bars_on_and_off(capsys):
    from nmf4d.execution import Progress

    with Progress(bars=True, tty_only=False).bar("level one: k sweep", 3, "k") as b:
        for _ in range(3):
            b.update(1)
    err = capsys.readouterr().err
    assert "level one: k sweep" in err and "3/3" in err
    with Progress(bars=False).bar("x", 3) as b:
        b.update(1)
    with Progress(bars=True).bar("y", 2) as b:      # not a terminal: bars stay silent
        b.update(1)
    assert capsys.readouterr().err == ""


def test_blocks_advance_the_innermost_counting_bar():
    p = Progress(bars=True, tty_only=False)
    with p.counting("outer", 10) as outer:
        p.block_done()
        with p.counting("inner", 10) as inner:
            threads = [threading.Thread(target=p.block_done) for _ in range(5)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        p.block_done()
    assert (outer.n, inner.n) == (2, 5)
    p.block_done()                                  # no counting bar open: ignored


def test_events_go_to_the_log():
    seen = []
    p = Progress(log=lambda stage, info: seen.append((stage, info)))
    p.event("select", 3)
    Progress().event("select", 3)                   # no log: nothing happens
    assert seen == [("select", 3)]


def test_stage_timer():
    timer = StageTimer()
    with timer("sweep"):
        time.sleep(0.01)
    timer.add_parts("sweep", {"sketch": 0.5})
    assert list(timer.seconds) == ["sweep", "sweep: sketch"]
    assert 0.01 <= timer.seconds["sweep"] < 1 and timer.seconds["sweep: sketch"] == 0.5
