"""Tests for nmf4d.report: the HTML report built from a real (small) results file.

A small synthetic scan is analysed once per module (k chosen automatically, and k given),
written with :func:`nmf4d.results.write_results`, and reported; the automatic one gets an
``explorer/`` group from the same data, the fixed one has none (the report must say so).
The explorer itself is tested in ``test_report_explorer.py``. The browser test opens the
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

import json

import numpy as np
import pytest
from PIL import Image as PILImage

from nmf4d.cli import main
from nmf4d.errors import InputError
from nmf4d.report import build_report
from nmf4d.report import images as I
from nmf4d.report import png as P
from nmf4d.report.build import FIGURE_NAMES, SECTIONS, repeat_command
from nmf4d.report.calibration import calibration_json, nice_bar, parse_calibration
from nmf4d.report.palette import CLUSTER_COLOURS, cluster_colours, overlap_colours

BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
AUTO_FIGURES = {"dataset", "level_one_loss", "level_two_ssim", "level_two_psnr", "level_two_gmsd",
                "level_two_mdsi", "level_two_scores", "cluster_map", "components", "weights",
                "overlap", "raw_vs_nmf"}


def _write(tmp: Path, k, *, explorer: bool = False) -> Path:
    from nmf4d.config import AnalysisConfig
    from nmf4d.pipeline import analyse
    from nmf4d.results import write_results
    from nmf4d.synthetic import make_polycrystal

    data, _ = make_polycrystal(scan_shape=(16, 16), pattern_shape=(32, 32), n_grains=3, seed=0)
    a = analyse(data, AnalysisConfig.from_flat(k=k, k_range=(2, 6), seed=0, explorer=explorer))
    tmp.mkdir(parents=True, exist_ok=True)
    write_results(tmp / "results.h5", a, input_path="synthetic:test",
                  input_info={"format": "synthetic", "shape": list(data.shape),
                              "dtype": str(data.dtype)})
    return tmp


@pytest.fixture(scope="module")
def auto_out(tmp_path_factory) -> Path:
    out = _write(tmp_path_factory.mktemp("report") / "auto", "auto", explorer=True)
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
    # self-contained: nothing fetched from elsewhere, no address of the network at all
    assert not re.search(r'<(script|link)\b[^>]*(src|href)=', html)
    assert not re.search(r'url\(\s*["\']?(https?:)?//', html)
    assert not re.search(r'https?:', html)
    # every section has its "how to read" caption
    for sid, _ in SECTIONS:
        block = html.split(f'<section id="{sid}">')[1].split("</section>")[0]
        assert 'class="how"' in block, sid
    return html


def test_report_auto_k(auto_out):
    assert AUTO_FIGURES == set(FIGURE_NAMES)
    html = _check_page(auto_out, AUTO_FIGURES)
    assert "Decision:" in html and "nmf4d demo" not in html
    assert "nmf4d run synthetic:test" in html
    assert 'id="explorer"' in html and 'id="explorer-data"' in html
    # reading order: explorer first, the pairwise IQA matrices after everything else but the run
    order = [html.index(f'id="{key}"') for key in (
        "explorer", "fig-cluster_map", "fig-components", "fig-weights", "fig-overlap",
        "fig-raw_vs_nmf", "fig-dataset", "fig-level_one_loss", "fig-level_two_scores",
        "fig-level_two_ssim", "fig-level_two_mdsi", "run")]
    assert order == sorted(order)
    # no calibration recorded: pixels
    assert "no calibration recorded" in html and "not recorded: maps in scan pixels" in html


def test_report_fixed_k(fixed_out):
    html = _check_page(fixed_out, AUTO_FIGURES - {
        "level_one_loss", "level_two_ssim", "level_two_psnr", "level_two_gmsd",
        "level_two_mdsi", "level_two_scores"})
    assert "level one (the loss sweep) was not run" in html
    assert "--k 3" in html
    # no explorer/ group: no explorer, a note instead, and the rest of the page complete
    assert 'id="explorer"' not in html and 'id="explorer-missing"' in html
    assert "has no explorer/ group" in html


def test_background_chip(auto_out):
    import h5py

    with h5py.File(auto_out / "results.h5", "r") as f:
        bg = [int(b) for b in np.atleast_1d(f.attrs["background"])]
        counts = f["clusters/count"][()]
    html = (auto_out / "report.html").read_text(encoding="utf-8")
    chip = re.search(r'id="background-chip"><b>([^<]*)</b>', html).group(1)
    if bg:
        n = len(bg)
        assert chip.startswith(f"{n} background component{'s' if n > 1 else ''}: ")
        for b in bg:
            share = 100 * counts[b] / counts.sum()
            assert f"{b} (vacuum, {share:.0f} % of the scan)" in chip
    else:
        assert chip == "no background component"
    from nmf4d.report.text import background_text
    assert background_text([0, 3], [10, 5, 5, 30], 50, {"3": "amorphous"}) == \
        "2 background components: 0 (vacuum, 20 % of the scan), 3 (amorphous, 60 % of the scan)"


def test_calibrated_report(tmp_path, auto_out):
    import h5py

    out = tmp_path / "cal"
    shutil.copytree(auto_out, out)
    with h5py.File(out / "results.h5", "a") as f:
        f.attrs["calibration"] = calibration_json(scan_step=2.5, scan_units="nm",
                                                  reciprocal_scale=0.02, source="test")
    build_report(out)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "16 × 16 positions (40 × 40 nm)" in html
    assert "0.02 Å⁻¹ per px" in html and "scale bars in nm (scan) and Å⁻¹ (patterns)" in html
    assert "2.5 × 2.5 nm" in html
    payload = json.loads(re.search(r'id="explorer-data">(.*?)</script>', html, re.S).group(1))
    assert payload["cal"]["scan_step"] == [2.5, 2.5] and payload["cal"]["scan_units"] == "nm"
    # the explorer's patterns are binned payload["bin"] times more than the factorised ones
    assert payload["cal"]["reciprocal"] == pytest.approx([0.02 * payload["bin"]] * 2)
    # the calibrated map differs from the pixel one only by its scale bar's label
    a = np.asarray(PILImage.open(auto_out / "figures" / "cluster_map.png"))
    b = np.asarray(PILImage.open(out / "figures" / "cluster_map.png"))
    assert a.shape == b.shape and 0 < (a != b).any(axis=2).mean() < 0.02


def test_calibration_parsing():
    cal = parse_calibration(calibration_json(scan_step=(2.0, 3.0), reciprocal_scale=0.01),
                            preprocessing_bin=2)
    assert cal.scan_step == (2.0, 3.0) and cal.scan_label == "nm"
    assert cal.reciprocal == (0.02, 0.02) and cal.reciprocal_label == "Å⁻¹"
    assert parse_calibration(None).scan_step is None and parse_calibration("junk").reciprocal is None
    assert parse_calibration('{"scan_step": -1}').scan_label == "px"
    assert nice_bar(2.5, 90) == (20.0, 8)        # 90 px x 2.5 nm = 225 nm: bar of 20 nm
    assert nice_bar(1.0, 60) == (10.0, 10)
    assert nice_bar(0.02, 32) == (0.1, 5)


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


def test_cluster_colours_match_between_map_legend_and_frames(auto_out):
    rng = np.random.default_rng(0)
    k = 4
    labels = rng.integers(0, k, (8, 8))
    cols = cluster_colours(k, [1])
    img = I.cluster_map_image(labels, cols, np.bincount(labels.ravel(), minlength=k), [1])
    zoom = P.zoom_for(labels.shape, I.MAP_PX)
    centres = img[zoom // 2:8 * zoom:zoom, zoom // 2:8 * zoom:zoom][:6, :6]   # clear of the bar
    expect = np.array([P.hex_rgb(c) for c in cols], np.uint8)[labels[:6, :6]]
    assert (centres == expect).all()
    # the legend beside the map shows each colour as a swatch
    legend = img[:, 8 * zoom:].reshape(-1, 3)
    for c in cols:
        assert (legend == P.hex_rgb(c)).all(axis=1).sum() > 50
    grid, boxes = I.patterns_image(rng.random((k, 6, 6)), cols, [1])
    assert len(boxes) == k
    for c, (x0, y0, x1, y1) in enumerate(boxes):
        assert tuple(grid[y0 - 1, (x0 + x1) // 2]) == P.hex_rgb(cols[c])   # the frame
    assert P.encode_png(grid)[:4] == b"\x89PNG"
    # the page: table swatches and explorer buttons in the same colours, in cluster order
    html = (auto_out / "report.html").read_text(encoding="utf-8")
    payload = json.loads(re.search(r'id="explorer-data">(.*?)</script>', html, re.S).group(1))
    buttons = re.findall(r'<button type="button" data-c="(\d+)" style="background: (#\w+)', html)
    swatches = re.findall(r'<span class="swatch" style="background: (#\w+); color', html)
    assert [c for _, c in buttons] == swatches == payload["colours"]
    assert [int(i) for i, _ in buttons] == list(range(len(swatches)))


def test_colour_tables_match_matplotlib():
    import matplotlib

    for name in ("cividis", "viridis", "RdBu_r", "viridis_r"):
        ref = np.asarray(matplotlib.colormaps[name](np.arange(256)))[:, :3] * 255
        assert np.abs(P.lut(name).astype(float) - ref).max() <= 0.5 + 1e-9, name


def test_many_clusters_bounded(tmp_path):
    """k in the hundreds: per-cluster panels capped, the table complete, time bounded."""
    out = _fake_results(tmp_path / "big", scan=(24, 24), pattern=(16, 16), k=200)
    t = {}
    build_report(out, timings=t)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert f"panels are drawn for the {I.MAX_PANELS} with the most positions" in html
    assert len(re.findall(r'<span class="swatch" style="background: #', html)) >= 200
    assert html.count('<button type="button" data-c=') == 200
    assert t["total"] < 20, t          # bounded (k = 256 once took minutes); ~1 s here
    assert len(I.panels_to_show(np.arange(200))) == I.MAX_PANELS
    grid, boxes = I.patterns_image(np.ones((200, 4, 4)), cluster_colours(200),
                                   show=I.panels_to_show(np.arange(200)))
    assert len(boxes) == I.MAX_PANELS


class _LazyScan:
    """A scan ``Poisson(W H)`` computed only for the rows asked for (no 4D array in memory)."""

    def __init__(self, w: np.ndarray, comps: np.ndarray, seed: int = 0):
        self.W = w.reshape(w.shape[0], -1).T                    # (n, k)
        self.H = comps.reshape(comps.shape[0], -1)              # (k, p)
        self.shape = (*w.shape[1:], *comps.shape[1:])
        self.rng = np.random.default_rng(seed)

    def reshape(self, *shape):
        return self

    def __getitem__(self, rows):
        return self.rng.poisson(self.W[rows] @ self.H).astype(np.float32)


def _fake_results(out: Path, *, scan, pattern, k, seed=0, explorer=True, noise=False) -> Path:
    """A minimal results file (k given, no sweep) from random non-negative factors.

    ``noise``: the worst case for the page's size, nothing compresses (uniform random
    components, weights and stored patterns).
    """
    import h5py

    from nmf4d.explorer_data import (explorer_from_array, explorer_layout,
                                            explorer_positions, write_explorer)

    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    comps = rng.random((k, *pattern)).astype(np.float32) ** (1 if noise else 8)
    comps /= comps.sum(axis=(1, 2), keepdims=True)
    w = (rng.random((k, *scan)) ** (1 if noise else 6) * 1000).astype(np.float32)
    labels = w.argmax(axis=0).astype(np.int32)
    srt = np.sort(w, axis=0)
    ratio = np.where(srt[-1] > 0, srt[-2] / np.maximum(srt[-1], 1e-9), 0).astype(np.float32)
    thr = np.array([0.75, 0.8, 0.85, 0.9, 0.95], np.float32)
    with h5py.File(out / "results.h5", "w") as f:
        f.attrs.update({"k": k, "input": "fake", "nmf4d_version": "test", "created": "now",
                        "parameters": json.dumps({"k": k, "seed": 0}),
                        "background": np.array([], np.int32)})
        f["components"], f["weights"], f["labels"] = comps, w, labels
        f["overlap/ratio"], f["overlap/thresholds"] = ratio, thr
        f["overlap/masks"] = ratio[None] >= thr[:, None, None]
        f["clusters/count"] = np.bincount(labels.ravel(), minlength=k)
        f["clusters/raw_mean"] = comps * 900
        f["clusters/nmf_pattern"] = comps * 1000
        f["extras/virtual_image"] = w.sum(axis=0)
        f["extras/mean_pattern"] = comps.mean(axis=0)
        if explorer and noise:
            b, step = explorer_layout(scan, pattern, n_components=k)
            n = len(explorer_positions(scan, step))
            q = rng.integers(0, 256, (n, pattern[0] // b, pattern[1] // b), dtype=np.uint8)
            write_explorer(f.create_group("explorer"), patterns=q, scale=np.ones(n, np.float32),
                           bin=b, step=step, scan_shape=scan, pattern_shape=pattern,
                           components=comps)
        elif explorer:
            write_explorer(f.create_group("explorer"),
                           **explorer_from_array(_LazyScan(w, comps, seed), components=comps))
    return out


def test_import_leaves_pyplot_alone():
    code = ("import sys, nmf4d.report, nmf4d.report.build, nmf4d.report.plots; "
            "print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    # what the pipeline imports pulls in numpy only; the report itself no matplotlib
    code = ("import sys, nmf4d.explorer_data, nmf4d.report.calibration; a = "
            "[m for m in ('matplotlib', 'PIL', 'jinja2', 'h5py') if m in sys.modules]; "
            "import nmf4d.report.build; print(a, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] False"


def test_report_build_needs_no_matplotlib(auto_out, tmp_path):
    shutil.copytree(auto_out, tmp_path / "o")
    code = ("import sys; from nmf4d.report import build_report; t = {}; "
            f"build_report({str(tmp_path / 'o')!r}, timings=t); "
            "print('matplotlib' in sys.modules, sorted(k for k in t if k.startswith('figure:')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    used, names = out.stdout.strip().split(" ", 1)
    assert used == "False"
    assert eval(names) == sorted(f"figure: {n}" for n in AUTO_FIGURES)   # timed, each


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
  const imgs = Array.from(document.querySelectorAll('figure[id] img'));
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
                widths = page.evaluate("Array.from(document.querySelectorAll('figure[id] img'))"
                                       ".map(i => i.complete ? i.naturalWidth : 0)")
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


@pytest.mark.parametrize("k, noise, layout, n_sel", [(8, False, (2, 3), 85 * 85),
                                                     (64, True, (2, 4), 64 * 64)])
def test_report_of_256x256_scan_under_20MB(tmp_path, k, noise, layout, n_sel):
    """A 256 x 256 scan of 64 x 64 patterns: the explorer bins and subsamples, the page < 20 MB.

    Also when nothing compresses (uniform noise everywhere, k = 64: the most maps).
    """
    out = _fake_results(tmp_path / "big", scan=(256, 256), pattern=(64, 64), k=k, noise=noise)
    import h5py

    with h5py.File(out / "results.h5", "r") as f:
        b, step = int(f["explorer"].attrs["bin"]), int(f["explorer"].attrs["step"])
        assert (b, step) == layout and f["explorer/patterns"].shape[0] == n_sel
    t = {}
    build_report(out, timings=t)
    size = (out / "report.html").stat().st_size
    assert size < 20e6, size
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "patterns binned 2 × 2" in html.lower()
    assert f"one position in {step} along y and x" in html
    assert not re.search(r"https?:", html)


def test_mismatched_explorer_group_is_reported_not_fatal(tmp_path, auto_out):
    import h5py

    out = tmp_path / "bad"
    shutil.copytree(auto_out, out)
    with h5py.File(out / "results.h5", "a") as f:
        del f["explorer/components"]
        f["explorer/components"] = np.ones((f["components"].shape[0], 5, 5), np.float32)
    build_report(out)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="explorer"' not in html and "does not match this results file" in html


def test_large_scan_maps_are_thinned():
    """A 1200-position-wide map is thinned, not enlarged: images stay small."""
    labels = np.arange(1200 * 1200).reshape(1200, 1200) % 3
    img = I.cluster_map_image(labels, cluster_colours(3), [1, 1, 1])
    assert img.shape[0] <= 2 * I.MAP_PX and img.shape[1] < 2 * I.MAP_PX + 300
    w = I.weights_image(np.random.default_rng(0).random((3, 1200, 1200)), cluster_colours(3))
    assert w.shape[0] < 1000


def test_line_plots():
    from nmf4d.report import lineplots as L

    t = L.nice_ticks(0.19, 0.41)
    assert t[0] <= 0.19 and t[-1] > 0.41 - 0.05 and np.allclose(np.diff(t), 0.05)
    assert L._tick_text(0.25, 0.05) == "0.25" and L._tick_text(25.0, 2.5) == "25.0"
    ks = np.arange(3, 12)
    img = L.loss_plot(ks, 1 / ks, 6, (4, 8), 6)
    assert img.shape == (340 * L.SCALE, 720 * L.SCALE, 3)
    star = (img == P.hex_rgb("#0072B2")).all(axis=2)
    assert star.sum() > 100                                    # the chosen k's star (and legend)
    red = np.zeros(ks.size, bool)
    red[4:] = True
    img = L.scores_plot(ks, {m: np.linspace(0, 1, ks.size) for m in ("ssim", "psnr", "gmsd",
                                                                      "mdsi")}, 6, red)
    assert (img == P.hex_rgb("#D55E00")).all(axis=2).sum() > 50   # redundant crosses
