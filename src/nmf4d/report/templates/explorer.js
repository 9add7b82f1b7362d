/* nmf4d report explorer: inline, no network. Data: the JSON in #explorer-data
   (built by nmf4d/report/explorer.py). Contract for tests: clicking #explorer-map sets
   data-selected="y,x" on #explorer and redraws #explorer-pattern; clicking a cluster
   sets data-cluster. window.nmf4dExplorer exposes the decoded arrays. */
(function () {
  "use strict";
  var root = document.getElementById("explorer");
  var src = document.getElementById("explorer-data");
  if (!root || !src) { return; }
  var D = JSON.parse(src.textContent);
  var $ = function (id) { return document.getElementById(id); };
  var status = $("explorer-status");
  function say(text) { status.textContent = text; status.hidden = !text; }

  function bytesOf(b64) {
    var bin = atob(b64), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out;
  }
  function inflate(bytes) {
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer().then(function (b) { return new Uint8Array(b); });
  }
  function typed(bytes, dtype) {
    var buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    if (dtype === "u1") { return new Uint8Array(buf); }
    if (dtype === "u2") { return new Uint16Array(buf); }
    return new Float32Array(buf);
  }
  function decode(a) {
    var b = bytesOf(a.b64);
    if (!a.z) { return Promise.resolve(typed(b, a.dtype)); }
    return inflate(b).then(function (u) { return typed(u, a.dtype); });
  }
  function table(hex) {
    var t = new Uint8Array(768);
    for (var i = 0; i < 768; i++) { t[i] = parseInt(hex.substr(2 * i, 2), 16); }
    return t;
  }
  var GRAY = new Uint8Array(768);
  for (var g = 0; g < 256; g++) { GRAY[3 * g] = GRAY[3 * g + 1] = GRAY[3 * g + 2] = g; }
  var LUTS = { gray: GRAY, cividis: table(D.luts.cividis), RdBu_r: table(D.luts.RdBu_r) };
  function rgb(hex) { return [1, 3, 5].map(function (i) { return parseInt(hex.substr(i, 2), 16); }); }
  var COLOURS = D.colours.map(rgb);

  var sy = D.scan[0], sx = D.scan[1], gy = D.grid[0], gx = D.grid[1];
  var by = D.shape[0], bx = D.shape[1], np = by * bx, k = D.k, step = D.step, off = D.offset;
  var A = {};
  var state = { sel: null, cluster: null, layer: 0 };

  /* ---- numbers at a position ---- */
  function snap(y, x) {
    var i = Math.min(gy - 1, Math.max(0, Math.round((y - off) / step)));
    var j = Math.min(gx - 1, Math.max(0, Math.round((x - off) / step)));
    return [off + i * step, off + j * step, i * gx + j];
  }
  function pattern(idx) {
    var out = new Float32Array(np), s = A.scale[idx], q = A.patterns.subarray(idx * np, idx * np + np);
    for (var p = 0; p < np; p++) { out[p] = s * q[p] * q[p]; }
    return out;
  }
  function weights(idx) {
    var out = new Float32Array(k);
    for (var c = 0; c < k; c++) { out[c] = A.weights[idx * k + c] * A.wscale[c]; }
    return out;
  }
  function reconstruction(idx) {
    var w = weights(idx), out = new Float32Array(np);
    for (var c = 0; c < k; c++) {
      var wc = w[c];
      if (wc === 0) { continue; }
      var h = A.components.subarray(c * np, c * np + np);
      for (var p = 0; p < np; p++) { out[p] += wc * h[p]; }
    }
    return out;
  }

  /* ---- drawing ---- */
  var scratch = document.createElement("canvas");
  function toImage(img, values, w, h, lut, lo, hi) {
    scratch.width = w; scratch.height = h;
    var ctx = scratch.getContext("2d"), im = ctx.createImageData(w, h), d = im.data;
    for (var p = 0; p < w * h; p++) {
      var v = (values[p] - lo) / (hi - lo);
      var t = Math.round(255 * Math.min(1, Math.max(0, isFinite(v) ? v : 0)));
      d[4 * p] = lut[3 * t]; d[4 * p + 1] = lut[3 * t + 1]; d[4 * p + 2] = lut[3 * t + 2]; d[4 * p + 3] = 255;
    }
    ctx.putImageData(im, 0, 0);
    img.src = scratch.toDataURL("image/png");
  }
  var FLOOR = 1e-3;
  function logScale(a, top) {
    var out = new Float32Array(a.length);
    for (var p = 0; p < a.length; p++) {
      var r = top > 0 ? Math.min(1, Math.max(FLOOR, a[p] / top)) : FLOOR;
      out[p] = (Math.log10(r) - Math.log10(FLOOR)) / -Math.log10(FLOOR);
    }
    return out;
  }
  function max(a) { var m = 0; for (var p = 0; p < a.length; p++) { if (a[p] > m) { m = a[p]; } } return m; }
  function fmt(v) { return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : (+v.toPrecision(4)).toString(); }
  function drawPattern(img, a, top) { toImage(img, logScale(a, top), bx, by, GRAY, 0, 1); }

  function drawMap() {
    var canvas = $("explorer-map"), ctx = canvas.getContext("2d");
    var im = ctx.createImageData(sx, sy), d = im.data, layer = D.layers[state.layer];
    var lut = layer.lut ? LUTS[layer.lut] : null, data = layer.values, cl = state.cluster;
    for (var p = 0; p < sy * sx; p++) {
      var c = A.labels[p], r, g, b;
      if (lut) { var t = data[p]; r = lut[3 * t]; g = lut[3 * t + 1]; b = lut[3 * t + 2]; }
      else { var col = COLOURS[c] || [255, 255, 255]; r = col[0]; g = col[1]; b = col[2]; }
      if (cl !== null && c !== cl) { r = 255 - 0.25 * (255 - r); g = 255 - 0.25 * (255 - g); b = 255 - 0.25 * (255 - b); }
      d[4 * p] = r; d[4 * p + 1] = g; d[4 * p + 2] = b; d[4 * p + 3] = 255;
    }
    ctx.putImageData(im, 0, 0);
    var bar = $("explorer-colourbar");
    if (lut) {
      var stops = [];
      for (var s = 0; s <= 8; s++) { var q = Math.round(255 * s / 8); stops.push("rgb(" + lut[3 * q] + "," + lut[3 * q + 1] + "," + lut[3 * q + 2] + ")"); }
      bar.innerHTML = "";
      var lo = document.createElement("span"), grad = document.createElement("i"), hi = document.createElement("span");
      lo.textContent = layer.lo; hi.textContent = layer.hi; grad.style.background = "linear-gradient(to right," + stops.join(",") + ")";
      bar.appendChild(lo); bar.appendChild(grad); bar.appendChild(hi); bar.hidden = false;
    } else { bar.hidden = true; }
  }
  function placeMarker(el, y, x) {
    if (y === null) { el.hidden = true; return; }
    /* a box around the stored position's cell (step x step positions), at least 11 px */
    var canvas = $("explorer-map"), w = canvas.clientWidth / sx, h = canvas.clientHeight / sy;
    var bw = Math.max(11, step * w), bh = Math.max(11, step * h);
    el.style.left = (canvas.offsetLeft + canvas.clientLeft + (x + 0.5) * w - bw / 2) + "px";
    el.style.top = (canvas.offsetTop + canvas.clientTop + (y + 0.5) * h - bh / 2) + "px";
    el.style.width = bw + "px"; el.style.height = bh + "px";
    el.hidden = false;
  }
  function coords(y, x) {
    var cal = D.cal, s = "(y, x) = (" + y + ", " + x + ") px";
    if (cal.scan_step) { s += " = (" + fmt(y * cal.scan_step[0]) + ", " + fmt(x * cal.scan_step[1]) + ") " + cal.scan_units; }
    return s;
  }
  function showPosition(y, x, pinned) {
    var sn = snap(y, x), ys = sn[0], xs = sn[1], idx = sn[2];
    var pat = pattern(idx), rec = reconstruction(idx), res = new Float32Array(np), w = weights(idx);
    var top = Math.max(max(pat), max(rec)), amp = 0, e2 = 0, p2 = 0;
    for (var p = 0; p < np; p++) { res[p] = pat[p] - rec[p]; amp = Math.max(amp, Math.abs(res[p])); e2 += res[p] * res[p]; p2 += pat[p] * pat[p]; }
    drawPattern($("explorer-pattern"), pat, top);
    drawPattern($("explorer-recon"), rec, top);
    toImage($("explorer-residual"), res, bx, by, LUTS.RdBu_r, -(amp || 1), amp || 1);
    $("explorer-pattern").dataset.position = ys + "," + xs;
    $("explorer-residual-range").textContent = "±" + fmt(amp);
    $("explorer-pattern-max").textContent = fmt(top);
    var lab = A.labels[ys * sx + xs], fg = [];
    for (var c0 = 0; c0 < k; c0++) { if (!D.clusters[c0].bg) { fg.push(w[c0]); } }
    fg.sort(function (a, b) { return b - a; });
    var ratio = fg.length > 1 && fg[0] > 0 ? fg[1] / fg[0] : 0;
    var head = (pinned ? "selected " : "pointer ") + coords(ys, xs);
    if (step > 1 && (ys !== y || xs !== x)) { head += " (nearest stored position to " + y + ", " + x + ")"; }
    $("explorer-where").textContent = head;
    $("explorer-where").className = pinned ? "pinned" : "hover";
    var fit = "cluster " + lab + (D.clusters[lab] && D.clusters[lab].bg ? " (background)" : "") +
      " · overlap ratio " + ratio.toFixed(2) + " · relative residual ‖p − r‖/‖p‖ = " + (p2 > 0 ? Math.sqrt(e2 / p2).toFixed(3) : "—");
    $("explorer-fit").textContent = fit;
    var order = Array.from({ length: k }, function (_, c) { return c; }).sort(function (a, b) { return w[b] - w[a]; });
    var total = w.reduce(function (s, v) { return s + v; }, 0), body = $("explorer-weights").tBodies[0];
    body.innerHTML = "";
    order.filter(function (c) { return w[c] > 0; }).slice(0, 8).forEach(function (c) {
      var tr = document.createElement("tr"), sw = document.createElement("td"), v = document.createElement("td"), sh = document.createElement("td");
      sw.innerHTML = "<span class='swatch' style='background:" + D.colours[c] + "'>" + c + "</span>";
      v.textContent = fmt(w[c]); v.className = "num"; sh.className = "num";
      sh.textContent = total > 0 ? (100 * w[c] / total).toFixed(1) + " %" : "—";
      tr.appendChild(sw); tr.appendChild(v); tr.appendChild(sh); body.appendChild(tr);
    });
    placeMarker($(pinned ? "explorer-marker" : "explorer-hover"), ys, xs);
    if (pinned) { root.dataset.selected = ys + "," + xs; state.sel = [y, x]; $("explorer-hover").hidden = true; }
    return [ys, xs];
  }
  function selectCluster(c) {
    state.cluster = (c === null || c === state.cluster) ? null : c;
    root.dataset.cluster = state.cluster === null ? "" : String(state.cluster);
    document.querySelectorAll("#explorer-clusters button").forEach(function (b) {
      b.classList.toggle("active", Number(b.dataset.c) === state.cluster);
    });
    var box = $("explorer-cluster");
    if (state.cluster === null) { box.hidden = true; drawMap(); return; }
    var cc = state.cluster, h = A.components.subarray(cc * np, cc * np + np), info = D.clusters[cc];
    drawPattern($("explorer-component"), h, max(h));
    if (A.means) { var m = A.means.subarray(cc * np, cc * np + np); drawPattern($("explorer-mean"), m, max(m)); }
    var t = "cluster " + cc + (info.bg ? " (background)" : "") + ": " + info.count + " positions (" +
      (100 * info.count / (sy * sx)).toFixed(1) + " % of the scan)";
    if (info.ssim !== undefined) { t += " · mean raw vs NMF: SSIM " + info.ssim.toFixed(3) + ", PSNR " + info.psnr.toFixed(1) + " dB"; }
    $("explorer-cluster-text").textContent = t;
    $("explorer-cluster-title").textContent = "cluster " + cc;
    $("explorer-cluster-title").style.background = D.colours[cc];
    box.hidden = false;
    drawMap();
  }
  function barFor(el, unitsPerPx, units, pxWide) {
    /* a round length (1, 2, 5 x 10^n) up to 22 % of the image, sized in % of it */
    var target = 0.22 * pxWide * unitsPerPx, e = Math.floor(Math.log10(target)), len = 0;
    [5, 2, 1].some(function (m) { len = m * Math.pow(10, e); return len <= target; });
    el.querySelector("b").style.width = (100 * len / unitsPerPx / pxWide) + "%";
    el.querySelector("span").textContent = (+len.toPrecision(3)) + " " + units;
  }
  function bars() {
    var cal = D.cal;
    barFor($("explorer-mapbar"), cal.scan_step ? cal.scan_step[1] : 1, cal.scan_units, sx);
    document.querySelectorAll(".x-kbar").forEach(function (el) {
      barFor(el, cal.reciprocal ? cal.reciprocal[1] : D.bin, cal.reciprocal_units, bx);
    });
  }

  /* ---- events ---- */
  function at(ev) {
    var rect = $("explorer-map").getBoundingClientRect();
    return [Math.min(sy - 1, Math.max(0, Math.floor((ev.clientY - rect.top) / rect.height * sy))),
            Math.min(sx - 1, Math.max(0, Math.floor((ev.clientX - rect.left) / rect.width * sx)))];
  }
  function wire() {
    var map = $("explorer-map");
    map.addEventListener("click", function (ev) { var p = at(ev); showPosition(p[0], p[1], true); map.focus(); });
    map.addEventListener("mousemove", function (ev) { var p = at(ev); showPosition(p[0], p[1], false); });
    map.addEventListener("mouseleave", function () { if (state.sel) { showPosition(state.sel[0], state.sel[1], true); } });
    map.addEventListener("keydown", function (ev) {
      var dy = { ArrowUp: -1, ArrowDown: 1 }[ev.key] || 0, dx = { ArrowLeft: -1, ArrowRight: 1 }[ev.key] || 0;
      if (!(dy || dx) || !state.sel) { return; }
      ev.preventDefault();
      var cur = snap(state.sel[0], state.sel[1]);
      showPosition(Math.min(sy - 1, Math.max(0, cur[0] + dy * step)), Math.min(sx - 1, Math.max(0, cur[1] + dx * step)), true);
    });
    document.querySelectorAll("#explorer-clusters button").forEach(function (b) {
      b.addEventListener("click", function () { selectCluster(Number(b.dataset.c)); });
    });
    var sel = $("explorer-layer");
    D.layers.forEach(function (l, i) { var o = document.createElement("option"); o.value = i; o.textContent = l.name; sel.appendChild(o); });
    sel.addEventListener("change", function () { state.layer = Number(sel.value); drawMap(); });
    window.addEventListener("resize", function () { if (state.sel) { var sn = snap(state.sel[0], state.sel[1]); placeMarker($("explorer-marker"), sn[0], sn[1]); } });
  }

  function start() {
    var names = Object.keys(D.arrays);
    var jobs = names.map(function (n) { return decode(D.arrays[n]); });
    D.layers.forEach(function (l) { jobs.push(l.data ? decode(l.data) : Promise.resolve(null)); });
    return Promise.all(jobs).then(function (out) {
      names.forEach(function (n, i) { A[n] = out[i]; });
      D.layers.forEach(function (l, i) { l.values = out[names.length + i]; });
      wire();
      drawMap();
      bars();
      var first = D.start || [Math.floor(sy / 2), Math.floor(sx / 2)];
      showPosition(first[0], first[1], true);
      root.dataset.ready = "true";
    });
  }
  window.nmf4dExplorer = {
    data: D, arrays: A, snap: snap,
    select: function (y, x) { return showPosition(y, x, true); },
    selectCluster: selectCluster,
    pattern: function (y, x) { return Array.from(pattern(snap(y, x)[2])); },
    reconstruction: function (y, x) { return Array.from(reconstruction(snap(y, x)[2])); },
    weights: function (y, x) { return Array.from(weights(snap(y, x)[2])); }
  };
  if (typeof DecompressionStream === "undefined" &&
      (Object.keys(D.arrays).some(function (n) { return D.arrays[n].z; }))) {
    say("This browser cannot inflate the explorer's data (no DecompressionStream): use a current Chrome, Edge, Firefox or Safari. The figures below are complete.");
    root.dataset.ready = "false";
    return;
  }
  window.nmf4dExplorer.ready = start().catch(function (e) {
    say("The explorer could not start: " + e.message);
    root.dataset.ready = "false";
  });
})();
