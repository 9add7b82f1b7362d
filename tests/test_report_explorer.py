"""Tests of the report's explorer: its data in results.h5 and the page in Chromium.

The data functions (:mod:`nmf4d.explorer_data`) are checked against their
contract: the budget holds, the per-block kernel gives the same result on any split of
the rows, the encoding stays within its quantisation step. The browser tests open the
report from disk in headless Chromium (Debian's ``chromium``) through Playwright with
every request to the network refused, click positions and clusters, and compare what
is drawn with what numpy computes from results.h5. They are skipped when Chromium or
Playwright is missing. ``NMF4D_SCREENSHOT_DIR`` keeps screenshots.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from nmf4d.report import build_report
from nmf4d.report import png as P
from nmf4d.explorer_data import (DEFAULT_BUDGET, add_explorer, bin_sum, decode_patterns,
                                        encode_patterns, explorer_block, explorer_from_array,
                                        explorer_layout, explorer_nbytes, explorer_positions,
                                        write_explorer)
from nmf4d.report.palette import cluster_colours

BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCAN, PATTERN = (20, 20), (64, 64)


# ---------------------------------------------------------------- data functions

@pytest.mark.parametrize("scan, pattern, k", [((60, 90), (64, 64), 7), ((256, 256), (64, 64), 8),
                                              ((256, 256), (64, 64), 256), ((48, 48), (64, 64), 6),
                                              ((512, 512), (256, 256), 12), ((16, 16), (32, 32), 3),
                                              ((100, 100), (63, 65), 5), ((1, 4000), (96, 96), 4)])
def test_layout_fits_budget(scan, pattern, k):
    b, step = explorer_layout(scan, pattern, n_components=k)
    by, bx = pattern[0] // b, pattern[1] // b
    assert explorer_nbytes(scan, pattern, b, step, k) <= DEFAULT_BUDGET
    assert max(by, bx) <= 128                               # binned to a screen panel
    assert min(by, bx) >= min(32, *pattern) or b == 1       # never binned below 32 px
    if step > 1:   # one step less would not fit
        assert explorer_nbytes(scan, pattern, b, step - 1, k) > DEFAULT_BUDGET
    if b > 1 and step == 1 and pattern[0] % b == 0:
        assert explorer_nbytes(scan, pattern, 1, 1, k) > DEFAULT_BUDGET or max(pattern) > 128


def test_layout_examples():
    assert explorer_layout((60, 90), (64, 64), n_components=7) == (2, 1)   # binned, all positions
    assert explorer_layout((48, 48), (64, 64), n_components=6) == (1, 1)   # the demo: full
    assert explorer_layout((256, 256), (64, 64), n_components=8) == (2, 3)


def test_block_kernel_on_any_split_matches_whole():
    rng = np.random.default_rng(0)
    data = rng.poisson(rng.random((13, 17, 64, 64)) ** 4 * 50).astype(np.uint16)
    ref = explorer_from_array(data, budget_bytes=100_000)
    assert ref["bin"] == 2 and ref["step"] == 2         # budget forces subsampling here
    X = data.reshape(13 * 17, -1)
    pats = np.zeros_like(ref["patterns"])
    scale = np.full_like(ref["scale"], -1)
    perm = rng.permutation(X.shape[0])                  # blocks of scattered rows, any order
    for part in np.array_split(perm, 5):
        blk = explorer_block(X[part], part, scan_shape=(13, 17), pattern_shape=(64, 64),
                             bin=ref["bin"], step=ref["step"])
        pats[blk.index], scale[blk.index] = blk.patterns, blk.scale
    for i0, i1 in ((0, 40), (40, 41), (41, 221)):      # and contiguous blocks by first row
        blk = explorer_block(X[i0:i1], i0, scan_shape=(13, 17), pattern_shape=(64, 64),
                             bin=ref["bin"], step=ref["step"])
        assert (pats[blk.index] == blk.patterns).all()
    assert (pats == ref["patterns"]).all() and (scale == ref["scale"]).all()
    pos = explorer_positions((13, 17), 2)
    assert pos[0].tolist() == [0, 0] and pos[-1].tolist() == [12, 16] and len(pos) == 7 * 9
    # what is stored is the binned pattern at each stored position
    dec = decode_patterns(ref["patterns"], ref["scale"])
    binned = bin_sum(data[pos[:, 0], pos[:, 1]], 2)
    top = binned.reshape(len(pos), -1).max(axis=1)[:, None, None]
    assert np.abs(np.sqrt(dec) - np.sqrt(binned)).max() <= (np.sqrt(top) / 510 + 1e-3).max()


def test_encoding_within_quantisation():
    rng = np.random.default_rng(1)
    v = rng.poisson(rng.random((50, 16, 16)) ** 6 * 3000).astype(np.float32)
    v[3] = 0                                            # an empty pattern
    q, s = encode_patterns(v)
    assert q.dtype == np.uint8 and s.dtype == np.float32 and s[3] == 0
    d = decode_patterns(q, s)
    top = v.reshape(50, -1).max(axis=1)[:, None, None]
    # one step of sqrt(v) is sqrt(max)/255; rounding: at most half of it
    assert (np.abs(np.sqrt(d) - np.sqrt(v)) <= np.sqrt(top) / 510 * 1.0001 + 1e-6).all()
    assert (d.reshape(50, -1).max(axis=1) == v.reshape(50, -1).max(axis=1)).all()
    q2, _ = encode_patterns(np.array([[[-1.0, np.nan], [4.0, 1.0]]]))
    assert q2.tolist() == [[[0, 0], [255, 128]]]


def test_write_and_add_explorer(tmp_path):
    rng = np.random.default_rng(2)
    data = rng.poisson(5, (6, 7, 64, 64)).astype(np.uint16)
    comps = rng.random((3, 64, 64)).astype(np.float32)
    with h5py.File(tmp_path / "results.h5", "w") as f:
        f["components"] = comps
        f["labels"] = np.zeros((6, 7), np.int32)
    info = add_explorer(tmp_path / "results.h5", data, budget_bytes=40_000)
    with h5py.File(tmp_path / "results.h5", "r") as f:
        g = f["explorer"]
        assert info == {"bin": 2, "step": 2, "n_sel": 12, "binned_shape": (32, 32)}
        assert g["patterns"].dtype == np.uint8 and g["patterns"].shape == (12, 32, 32)
        assert g["scale"].dtype == np.float32 and g["positions"].dtype == np.int32
        assert g["components"].shape == (3, 32, 32)
        np.testing.assert_allclose(g["components"][()], bin_sum(comps, 2), rtol=1e-6)
        assert {a: g.attrs[a] for a in ("version", "bin", "step", "offset")} == \
            {"version": 1, "bin": 2, "step": 2, "offset": 0}
        assert g.attrs["encoding"] == "sqrt-uint8"
        assert g.attrs["scan_shape"].tolist() == [6, 7]
    add_explorer(tmp_path / "results.h5", data)                 # replaced, not duplicated
    with pytest.raises(ValueError, match="do not match"):
        add_explorer(tmp_path / "results.h5", data[:, :, :20])
    with h5py.File(tmp_path / "x.h5", "w") as f, pytest.raises(ValueError, match="uint8"):
        write_explorer(f.create_group("explorer"), patterns=np.zeros((2, 4, 4), np.float32),
                       scale=np.zeros(2), bin=1, step=1, scan_shape=(1, 2), pattern_shape=(4, 4))


def test_reconstruction_is_binned_nmf_model():
    """Binning is linear: weights x binned components = the binned full-resolution model."""
    rng = np.random.default_rng(3)
    w = rng.random((4, 5, 6)).astype(np.float32)
    h = rng.random((4, 33, 33)).astype(np.float32)
    full = np.einsum("kyx,kab->yxab", w, h)
    np.testing.assert_allclose(np.einsum("kyx,kab->yxab", w, bin_sum(h, 2)), bin_sum(full, 2),
                               rtol=1e-5)


# ---------------------------------------------------------------- the page

@pytest.fixture(scope="module")
def outs(tmp_path_factory):
    """One analysis, two reports: every position stored; binned and subsampled."""
    from nmf4d.config import AnalysisConfig
    from nmf4d.pipeline import analyse
    from nmf4d.results import write_results
    from nmf4d.synthetic import make_polycrystal

    data, _ = make_polycrystal(scan_shape=SCAN, pattern_shape=PATTERN, n_grains=3, seed=1,
                               dose=2000.0)
    a = analyse(data, AnalysisConfig.from_flat(k=4, seed=0))
    base = tmp_path_factory.mktemp("explorer")
    full, sub = base / "full", base / "sub"
    full.mkdir()
    write_results(full / "results.h5", a, input_path="synthetic:explorer")
    shutil.copytree(full, sub)
    add_explorer(full / "results.h5", data)
    add_explorer(sub / "results.h5", data, budget_bytes=150_000)
    for out in (full, sub):
        build_report(out)
    return {"full": full, "sub": sub, "data": data}


def _results(out: Path) -> dict:
    with h5py.File(out / "results.h5", "r") as f:
        e = f["explorer"]
        return {"W": f["weights"][()], "labels": f["labels"][()], "P": e["patterns"][()],
                "S": e["scale"][()], "H": e["components"][()], "bin": int(e.attrs["bin"]),
                "step": int(e.attrs["step"]), "off": int(e.attrs["offset"]),
                "bg": [int(b) for b in np.atleast_1d(f.attrs["background"])]}


def _snap(r, y, x):
    sy, sx = r["labels"].shape
    gy, gx = len(range(r["off"], sy, r["step"])), len(range(r["off"], sx, r["step"]))
    i = int(min(gy - 1, max(0, np.floor((y - r["off"]) / r["step"] + 0.5))))
    j = int(min(gx - 1, max(0, np.floor((x - r["off"]) / r["step"] + 0.5))))
    return r["off"] + i * r["step"], r["off"] + j * r["step"], i * gx + j


def _expected_pattern_image(r, y, x):
    """Grey levels of #explorer-pattern for (y, x), computed with numpy from results.h5."""
    ys, xs, idx = _snap(r, y, x)
    pat = decode_patterns(r["P"][idx:idx + 1], r["S"][idx:idx + 1])[0]
    rec = np.einsum("k,kab->ab", r["W"][:, ys, xs], r["H"])
    top = max(float(pat.max()), float(rec.max()))
    return P.to_index(P.log_scale(pat, vmax=top)), pat, rec


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    if os.path.exists("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    pytest.skip("chromium not installed (Debian package 'chromium'); browser test skipped")


@contextlib.contextmanager
def _page(out: Path, errors: list, requests: list):
    exe = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda q: errors.append(f"request failed: {q.url}"))

            def route(rt):      # the network is "down": only the file itself may load
                requests.append(rt.request.url)
                if rt.request.url.startswith(("file:", "data:", "blob:")):
                    rt.continue_()
                else:
                    rt.abort()
            page.route("**/*", route)
            page.goto((out / "report.html").resolve().as_uri(), wait_until="load")
            page.wait_for_selector('#explorer[data-ready="true"]', timeout=20_000)
            yield page
        finally:
            browser.close()


def _click(page, y, x, sy, sx):
    box = page.locator("#explorer-map").bounding_box()
    page.mouse.click(box["x"] + (x + 0.5) * box["width"] / sx,
                     box["y"] + (y + 0.5) * box["height"] / sy)


_PIXELS = """async (id) => {
  const img = document.getElementById(id); await img.decode();
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
  return [c.height, c.width, Array.from(ctx.getImageData(0, 0, c.width, c.height).data)];
}"""
_MAP = """() => { const c = document.getElementById('explorer-map');
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }"""


def _grey(page, id_):
    h, w, rgba = page.evaluate(_PIXELS, id_)
    return np.asarray(rgba, np.int16).reshape(h, w, 4)[..., 0]


def _shot(page, name):
    target = os.environ.get("NMF4D_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)
        page.locator("#explorer").screenshot(path=str(Path(target) / f"{name}_explorer.png"))


def test_explorer_clicks_show_the_clicked_position(outs):
    r = _results(outs["full"])
    labels = r["labels"]
    sy, sx = labels.shape
    assert r["bin"] == 1 and r["step"] == 1
    fg = [c for c in np.unique(labels) if c not in r["bg"]]
    a = tuple(int(v) for v in np.argwhere(labels == fg[0])[len(np.argwhere(labels == fg[0])) // 2])
    b = tuple(int(v) for v in np.argwhere(labels == fg[1])[len(np.argwhere(labels == fg[1])) // 2])
    errors, requests = [], []
    html = (outs["full"] / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"https?:", html)
    with _page(outs["full"], errors, requests) as page:
        shown = {}
        for y, x in (a, b):
            _click(page, y, x, sy, sx)
            assert page.get_attribute("#explorer", "data-selected") == f"{y},{x}"
            assert page.get_attribute("#explorer-pattern", "data-position") == f"{y},{x}"
            shown[(y, x)] = page.get_attribute("#explorer-pattern", "src")
            grey = _grey(page, "explorer-pattern")
            expect, pat, rec = _expected_pattern_image(r, y, x)
            assert grey.shape == expect.shape == PATTERN
            assert np.abs(grey - expect).max() <= 1          # the clicked position's pattern
            js_rec = np.asarray(page.evaluate(f"nmf4dExplorer.reconstruction({y}, {x})"))
            js_pat = np.asarray(page.evaluate(f"nmf4dExplorer.pattern({y}, {x})"))
            # reconstruction = weights x components, within the uint16 weight quantisation
            np.testing.assert_allclose(js_rec.reshape(rec.shape), rec,
                                       atol=2e-5 * rec.max() + 1e-6)
            np.testing.assert_allclose(js_pat.reshape(pat.shape), pat, rtol=1e-6, atol=1e-6)
            raw = outs["data"][y, x].astype(np.float32)
            assert np.abs(np.sqrt(js_pat.reshape(raw.shape)) - np.sqrt(raw)).max() <= \
                np.sqrt(raw.max()) / 510 + 1e-4                # = the data, to the 8-bit step
            js_w = np.asarray(page.evaluate(f"nmf4dExplorer.weights({y}, {x})"))
            np.testing.assert_allclose(js_w, r["W"][:, y, x], atol=r["W"].max() / 65535)
            rows = page.locator("#explorer-weights tbody tr").all_inner_texts()
            assert rows[0].split()[0] == str(int(np.argmax(r["W"][:, y, x])))
        assert shown[a] != shown[b]                           # the pattern changed
        assert page.locator("#explorer-where").inner_text().startswith(f"selected (y, x) = {b}")

        # pointing previews without changing the selection
        box = page.locator("#explorer-map").bounding_box()
        page.mouse.move(box["x"] + 0.5 * box["width"] / sx, box["y"] + 0.5 * box["height"] / sy)
        assert "pointer (y, x) = (0, 0)" in page.locator("#explorer-where").inner_text()
        assert page.get_attribute("#explorer", "data-selected") == f"{b[0]},{b[1]}"
        page.mouse.move(5, 5)                                 # leaving the map restores it
        assert page.get_attribute("#explorer-pattern", "data-position") == f"{b[0]},{b[1]}"

        # arrow keys step the selection
        page.focus("#explorer-map")
        page.keyboard.press("ArrowUp" if b[0] > 0 else "ArrowDown")
        assert page.get_attribute("#explorer", "data-selected") == \
            f"{b[0] - 1 if b[0] > 0 else 1},{b[1]}"

        # a cluster: its component, highlighted on the map
        c = int(fg[1])
        page.click(f'#explorer-clusters button[data-c="{c}"]')
        assert page.get_attribute("#explorer", "data-cluster") == str(c)
        assert page.is_visible("#explorer-component") and page.is_visible("#explorer-mean")
        comp = _grey(page, "explorer-component")
        assert np.abs(comp - P.to_index(P.log_scale(r["H"][c]))).max() <= 1
        cols = np.array([P.hex_rgb(v) for v in cluster_colours(r["W"].shape[0], r["bg"])])
        m = np.asarray(page.evaluate(_MAP), np.int16).reshape(sy, sx, 4)[..., :3]
        inside = labels == c
        assert (m[inside] == cols[c]).all()
        dim = 255 - 0.25 * (255 - cols[labels[~inside]])
        assert np.abs(m[~inside] - dim).max() <= 1
        page.click(f'#explorer-clusters button[data-c="{c}"]')  # again: highlight off
        assert page.get_attribute("#explorer", "data-cluster") == ""
        m = np.asarray(page.evaluate(_MAP), np.int16).reshape(sy, sx, 4)[..., :3]
        assert (m == cols[labels]).all()

        # a weight map from the list
        names = page.locator("#explorer-layer option").all_inner_texts()
        page.select_option("#explorer-layer", str(names.index("weight of component 0")))
        m = np.asarray(page.evaluate(_MAP), np.int16).reshape(sy, sx, 4)[..., :3]
        w0 = r["W"][0]
        q = ((w0 - w0.min()) * (255.0 / (w0.max() - w0.min())) + 0.5).astype(np.uint8)
        assert (m == P.lut("cividis")[q]).all()
        _shot(page, "explorer_full")
    assert errors == []
    assert all(u.startswith(("file:", "data:", "blob:")) for u in requests), requests


def test_explorer_subsampled_snaps_and_says_so(outs):
    r = _results(outs["sub"])
    sy, sx = r["labels"].shape
    assert r["bin"] == 2 and r["step"] == 2
    html = (outs["sub"] / "report.html").read_text(encoding="utf-8")
    note = re.search(r'id="explorer-note">([^<]*)<', html).group(1)
    assert "binned 2 × 2 (32 × 32 px shown of 64 × 64)" in note
    assert "one position in 2 along y and x stored (100 of 400" in note
    errors, requests = [], []
    with _page(outs["sub"], errors, requests) as page:
        for y, x in ((3, 5), (12, 9)):
            ys, xs, _ = _snap(r, y, x)
            _click(page, y, x, sy, sx)
            assert page.get_attribute("#explorer", "data-selected") == f"{ys},{xs}"
            assert (ys, xs) != (y, x) or (y % 2 == 0 and x % 2 == 0)
            grey = _grey(page, "explorer-pattern")
            expect, _, _ = _expected_pattern_image(r, y, x)
            assert grey.shape == (32, 32) and np.abs(grey - expect).max() <= 1
        assert "nearest stored position" in page.locator("#explorer-where").inner_text()
        _shot(page, "explorer_subsampled")
    assert errors == []


def test_explorer_payload_budget(outs):
    """The page embeds what the layout promised, compressed, and nothing at full size."""
    from nmf4d.report.explorer import decode_array

    html = (outs["full"] / "report.html").read_text(encoding="utf-8")
    payload = json.loads(re.search(r'id="explorer-data">(.*?)</script>', html, re.S).group(1))
    r = _results(outs["full"])
    assert (decode_array(payload["arrays"]["patterns"]).reshape(r["P"].shape) == r["P"]).all()
    k = r["W"].shape[0]
    size = {"u1": 1, "u2": 2, "f4": 4}
    raw = sum(np.prod(a["shape"]) * size[a["dtype"]] for a in payload["arrays"].values())
    raw += sum(np.prod(lay["data"]["shape"]) for lay in payload["layers"] if "data" in lay)
    assert raw <= explorer_nbytes(SCAN, PATTERN, r["bin"], r["step"], k) + 4 * k   # + wscale
    assert len(payload["arrays"]["patterns"]["b64"]) < r["P"].nbytes      # deflate helps
