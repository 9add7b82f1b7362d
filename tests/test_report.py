"""Tests for nmf4d.report: the HTML report built from a real (small) results file.

A small synthetic scan is analysed once per module (k chosen automatically, and k given),
written with :func:`nmf4d.results.write_results`, and reported. The browser test opens the
page in headless Chromium (Debian's ``chromium`` package) through Playwright, or through
the Chromium command line when Playwright is not installed; it is skipped when Chromium
is absent. Set ``NMF4D_SCREENSHOT_DIR`` to keep a full-page screenshot.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nmf4d.cli import main
from nmf4d.errors import InputError
from nmf4d.report import build_report
from nmf4d.report import figures as F
from nmf4d.report.build import FIGURE_NAMES, SECTIONS, repeat_command
from nmf4d.report.palette import CLUSTER_COLOURS, cluster_colours, overlap_colours

BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
AUTO_FIGURES = {"dataset", "level_one_loss", "level_two_ssim", "level_two_psnr", "level_two_gmsd",
                "level_two_mdsi", "level_two_scores", "cluster_map", "components", "weights",
                "overlap", "raw_vs_nmf"}


def _write(tmp: Path, k) -> Path:
    from nmf4d.config import AnalysisConfig
    from nmf4d.pipeline import analyse
    from nmf4d.results import write_results
    from nmf4d.synthetic import make_polycrystal

    data, _ = make_polycrystal(scan_shape=(16, 16), pattern_shape=(32, 32), n_grains=3, seed=0)
    a = analyse(data, AnalysisConfig.from_flat(k=k, k_range=(2, 6), seed=0))
    tmp.mkdir(parents=True, exist_ok=True)
    write_results(tmp / "results.h5", a, input_path="synthetic:test",
                  input_info={"format": "synthetic", "shape": list(data.shape),
                              "dtype": str(data.dtype)})
    return tmp


@pytest.fixture(scope="module")
def auto_out(tmp_path_factory) -> Path:
    out = _write(tmp_path_factory.mktemp("report") / "auto", "auto")
    build_report(out)
    return out


@pytest.fixture(scope="module")
def fixed_out(tmp_path_factory) -> Path:
    out = _write(tmp_path_factory.mktemp("report") / "fixed", 3)
    build_report(out)
    return out


def _check_page(out: Path, figures: set[str]) -> str:
    html = (out / "report.html").read_text(encoding="utf-8")
    assert set(p.stem for p in (out / "figures").glob("*.png")) == figures
    for p in (out / "figures").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for sid, name in SECTIONS:
        assert f'id="{sid}"' in html and name in html
    srcs = re.findall(r'<img[^>]*src="([^"]*)"', html)
    assert len(srcs) == len(figures)
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    # self-contained: nothing fetched from elsewhere
    assert not re.search(r'<(script|link)\b[^>]*(src|href)=', html)
    assert not re.search(r'url\(\s*["\']?(https?:)?//', html)
    return html


def test_report_auto_k(auto_out):
    assert AUTO_FIGURES == set(FIGURE_NAMES)
    html = _check_page(auto_out, AUTO_FIGURES)
    assert "Decision:" in html and "nmf4d demo" not in html
    assert "nmf4d run synthetic:test" in html


def test_report_fixed_k(fixed_out):
    html = _check_page(fixed_out, AUTO_FIGURES - {
        "level_one_loss", "level_two_ssim", "level_two_psnr", "level_two_gmsd",
        "level_two_mdsi", "level_two_scores"})
    assert "level one (the loss sweep) was not run" in html
    assert "--k 3" in html


def test_cli_report(auto_out, capsys):
    assert main(["report", str(auto_out)]) == 0
    assert "report.html" in capsys.readouterr().err


def test_missing_or_bad_results(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("nmf4d: error:") == 2
    (tmp_path / "results.h5").write_bytes(b"not an HDF5 file")
    with pytest.raises(InputError, match="cannot read results file"):
        build_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_repeat_command():
    params = {"k": "auto", "k_range": [2, 9], "seed": 3, "max_iter": 50, "tol": 1e-4,
              "init": "spa", "preprocessing": {"bin": 2, "filter": "mean3", "crop": None}}
    cmd = repeat_command({"input": "/d/a b.npy"}, params)     # a record of nmf4d 0.1
    assert cmd.startswith("nmf4d run '/d/a b.npy' -o OUT --k auto --k-range 2:9")
    assert "--bin 2" in cmd and "--filter mean3" in cmd and "--seed 3" in cmd
    assert "--max-iter 50" in cmd and "--tol 0.0001" in cmd
    demo = repeat_command({"input": "synthetic:x", "demo_k_true": 7}, {"k": 5})
    assert demo.startswith("nmf4d demo -o OUT --k 5 ")
    # the command parses back to the recorded configuration, every option included
    from nmf4d.cli import build_parser
    from nmf4d.cli_options import config_from_args
    from nmf4d.config import AnalysisConfig, config_from_record
    config = AnalysisConfig.from_flat(k=4, bin=2, filter="pca", pca_rank=3, seed=9,
                                      memory="3GB", thresholds=(0.7,), report=False)
    cmd = repeat_command({"input": "/d/x.npy"}, config.to_dict())
    args = build_parser().parse_args(shlex.split(cmd)[1:])
    assert config_from_args(args) == config == config_from_record(config.to_dict())
    odd = repeat_command({"input": "/d/x.npy"},
                         AnalysisConfig.from_flat(ssim_max=0.9).to_dict())
    assert odd.endswith("# also set from Python: selection.ssim_max")


def test_palette():
    assert len(set(CLUSTER_COLOURS)) == len(CLUSTER_COLOURS) == 24
    cols = cluster_colours(5, background=[2])
    assert cols[2] not in CLUSTER_COLOURS and len(set(cols)) == 5
    assert overlap_colours([0.75, 0.8, 0.85, 0.9, 0.95]) == [
        "#CC3311", "#EE7733", "#F0E442", "#009E73", "#0072B2"]


def test_cluster_colours_match_between_map_legend_and_frames():
    rng = np.random.default_rng(0)
    k = 4
    labels = rng.integers(0, k, (8, 8))
    cols = cluster_colours(k, [1])
    fmap = F.cluster_map_figure(labels, cols, np.bincount(labels.ravel(), minlength=k), [1])
    ax = fmap.axes[0]
    cmap = ax.images[0].get_cmap()
    from matplotlib.colors import to_hex
    assert [to_hex(cmap(i)) for i in range(k)] == [c.lower() for c in cols]
    legend = [to_hex(h.get_facecolor()) for h in ax.get_legend().get_patches()]
    assert legend == [c.lower() for c in cols]
    fpat = F.patterns_figure(rng.random((k, 6, 6)), cols, [1])
    frames = [to_hex(a.spines["top"].get_edgecolor()) for a in fpat.axes if a.get_visible()]
    assert frames == [c.lower() for c in cols]
    assert F.to_png(fpat)[:4] == b"\x89PNG"


def test_import_leaves_pyplot_alone():
    code = ("import sys, nmf4d.report, nmf4d.report.figures; "
            "print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


def _keep(shot: Path) -> None:
    target = os.environ.get("NMF4D_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / shot.name)


_PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  const ids = Array.from(document.querySelectorAll('section[id]')).map(s => s.id).join(',');
  document.body.setAttribute('data-probe', imgs.length + ':' + bad + ':' + ids);
});
</script>"""


def test_browser(auto_out, tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium not installed (Debian package 'chromium'); browser test skipped")
    url = (auto_out / "report.html").resolve().as_uri()
    shot = tmp_path / "report_screenshot.png"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None:
        _browser_cli(exe, auto_out, shot)
    else:
        errors: list[str] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, args=BROWSER_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
                page.goto(url, wait_until="load")
                widths = page.evaluate(
                    "Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
                ids = page.evaluate(
                    "Array.from(document.querySelectorAll('section[id]')).map(s => s.id)")
                headings = page.evaluate(
                    "Array.from(document.querySelectorAll('section h2')).map(h => h.innerText)")
                page.screenshot(path=str(shot), full_page=True)
            finally:
                browser.close()
        assert len(widths) == len(AUTO_FIGURES) and all(w > 0 for w in widths), widths
        assert ids == [sid for sid, _ in SECTIONS]
        assert headings == [name for _, name in SECTIONS]
        assert errors == []
    assert shot.stat().st_size > 10_000
    _keep(shot)


def _browser_cli(exe: str, out: Path, shot: Path) -> None:
    """Fallback without Playwright: the Chromium command line on a probed copy."""
    page = out / "report_probe.html"
    page.write_text((out / "report.html").read_text(encoding="utf-8")
                    .replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    try:
        dom = subprocess.run([exe, *BROWSER_ARGS, "--virtual-time-budget=5000", "--dump-dom",
                              "--enable-logging=stderr", "--v=0", page.as_uri()],
                             capture_output=True, text=True, timeout=60)
        subprocess.run([exe, *BROWSER_ARGS, "--window-size=1280,9000",
                        f"--screenshot={shot}", (out / "report.html").resolve().as_uri()],
                       capture_output=True, timeout=60, check=True)
    finally:
        page.unlink()
    m = re.search(r'data-probe="(\d+):(\d+):([^"]*)"', dom.stdout)
    assert m, "the probe did not run"
    assert int(m.group(1)) == len(AUTO_FIGURES) and int(m.group(2)) == 0
    assert m.group(3).split(",") == [sid for sid, _ in SECTIONS]
    assert not re.search(r"CONSOLE.*(Uncaught|Error)", dom.stderr)
