"""Full-reference image-quality metrics for comparing diffraction patterns.

The paper whose method nmf4d follows compares NMF component patterns pairwise with PSNR,
SSIM, GMSD and MDSI as computed by the `piq` 0.8.0 library, and uses the standard
deviation of the pixel values as a noise measure.

Why these are implemented by hand: piq needs torch and torchvision, which do not import
on our machines and would be a heavy dependency for four small formulas; scikit-image has
SSIM and PSNR but neither GMSD nor MDSI, and it is not batched. This module reproduces
piq's conventions exactly for greyscale images in vectorised numpy (float64), and
``tests/test_iqa.py`` checks every metric against numbers produced by piq 0.8.0 (and SSIM
and PSNR against scikit-image).

All metrics take images of shape (ky, kx) or batches of shape (n, ky, kx), divide them
by ``data_range`` (so that they lie in [0, 1] like piq expects) and return a float or an
ndarray of shape (n,). `pairwise` evaluates a metric for every ordered pair of a stack of
patterns in one batch, computing per-image quantities only once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from .errors import InputError

__all__ = ["psnr", "ssim", "gmsd", "mdsi", "pairwise", "nsd", "immerkaer_sigma",
           "METRICS", "HIGHER_IS_SIMILAR"]

FloatOrArray = Union[float, NDArray[np.float64]]

_PSNR_EPS = 1e-8                      # piq: -10 log10(MSE + 1e-8)
_SSIM_WIN, _SSIM_SIGMA = 11, 1.5
_SSIM_C1, _SSIM_C2 = 0.01 ** 2, 0.03 ** 2
_GMSD_T = 170.0 / 255.0 ** 2
_MDSI_C1, _MDSI_C2, _MDSI_C3 = 140.0, 55.0, 550.0
_MDSI_ALPHA, _MDSI_Q, _MDSI_O = 0.6, 0.25, 0.25
# A grey image repeated to RGB, mapped by piq's RGB -> LHM matrix (rows L, H, M):
_LHM_L = 0.2989 + 0.587 + 0.114
_LHM_H = 0.3 + 0.04 - 0.35
_LHM_M = 0.34 - 0.6 + 0.17
# The chromaticity similarity (2(Hx Hy + Mx My) + c3) / (Hx^2 + Hy^2 + Mx^2 + My^2 + c3)
# of grey images is a similarity map of the grey values scaled by this factor:
_MDSI_CHROMA = math.sqrt(_LHM_H ** 2 + _LHM_M ** 2)
_NEG_RE, _NEG_IM = math.cos(math.pi * _MDSI_Q), math.sin(math.pi * _MDSI_Q)
_CHUNK_ELEMENTS = 1 << 16             # pixels per pair-chunk array: 512 KiB, cache-friendly


# ----------------------------------------------------------------------------- checks
def _as_images(a: ArrayLike, name: str, ndims: tuple[int, ...] = (2, 3)) -> NDArray[np.float64]:
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim not in ndims:
        allowed = " or ".join({2: "(ky, kx)", 3: "(n, ky, kx)"}[d] for d in ndims)
        raise InputError(f"{name} must have shape {allowed}, got shape {arr.shape}")
    if arr.shape[-1] < 1 or arr.shape[-2] < 1:
        raise InputError(f"{name} must have images of at least 1x1 pixels, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise InputError(f"{name} must be finite, got {bad} NaN or infinite value(s)")
    return arr


def _data_range(value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"data_range must be a number > 0, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise InputError(f"data_range must be a finite number > 0, got {value!r}")
    return v


# ------------------------------------------------------------------- image operations
def _avg_pool(a: NDArray, k: int, pad_lo: int = 0, pad_hi: int = 0) -> NDArray:
    """Zero-pad (n, h, w) by pad_lo/pad_hi on both axes, then k x k average pool (floor)."""
    if pad_lo or pad_hi:
        a = np.pad(a, ((0, 0), (pad_lo, pad_hi), (pad_lo, pad_hi)))
    if k == 1:
        return a
    n, h, w = a.shape
    h, w = h // k, w // k
    return a[:, :h * k, :w * k].reshape(n, h, k, w, k).mean(axis=(2, 4))


def _prewitt(a: NDArray) -> tuple[NDArray, NDArray]:
    """Prewitt gradients (kernel / 3) of (n, h, w) images with zero padding 1 (same size)."""
    p = np.pad(a, ((0, 0), (1, 1), (1, 1)))
    cols = p[:, :-2, :] + p[:, 1:-1, :] + p[:, 2:, :]
    rows = p[:, :, :-2] + p[:, :, 1:-1] + p[:, :, 2:]
    return (cols[:, :, 2:] - cols[:, :, :-2]) / 3.0, (rows[:, 2:, :] - rows[:, :-2, :]) / 3.0


def _similarity(a: NDArray, b: NDArray, a2: NDArray, b2: NDArray, c: float) -> NDArray:
    """Dice-like similarity map (2ab + c) / (a^2 + b^2 + c) with precomputed squares."""
    return (2.0 * a * b + c) / (a2 + b2 + c)


def _gauss_window() -> NDArray:
    """Normalised 1-D Gaussian; its outer product is piq's 11x11 window."""
    c = np.arange(_SSIM_WIN, dtype=np.float64) - (_SSIM_WIN - 1) / 2.0
    g = np.exp(-c ** 2 / (2.0 * _SSIM_SIGMA ** 2))
    return g / g.sum()


_GAUSS = _gauss_window()


def _gauss_valid(a: NDArray) -> NDArray:
    """'valid' (unpadded) separable Gaussian filtering of (n, h, w) images."""
    # ndimage's single-threaded loops beat BLAS-based Toeplitz products on busy machines
    r = _SSIM_WIN // 2
    a = ndimage.correlate1d(a, _GAUSS, axis=-1, mode="constant")[:, :, r:a.shape[2] - r]
    return ndimage.correlate1d(a, _GAUSS, axis=-2, mode="constant")[:, r:a.shape[1] - r, :]


def _ssim_factor(shape: tuple[int, int]) -> int:
    return max(1, round(min(shape) / 256))      # Python round, as piq


def _mdsi_pool(shape: tuple[int, int]) -> tuple[int, int, int]:
    k = max(1, round(min(shape) / 256))
    return k, (k - 1) // 2, k // 2


# --------------------------------------------------------------------- metric kernels
@dataclass(frozen=True)
class _Spec:
    name: str
    features: Callable[[NDArray], dict]
    pairs: Callable[[dict, NDArray, NDArray], NDArray]
    check: Callable[[tuple[int, int]], None]
    # None for symmetric metrics; else f(feats, i, j) -> (values(i, j), values(j, i))
    both: Optional[Callable[[dict, NDArray, NDArray], tuple[NDArray, NDArray]]] = None


def _psnr_pairs(f: dict, i: NDArray, j: NDArray) -> NDArray:
    d = f["x"][i] - f["x"][j]
    return -10.0 * np.log10(np.mean(d * d, axis=(1, 2)) + _PSNR_EPS)


def _ssim_check(shape: tuple[int, int]) -> None:
    f = _ssim_factor(shape)
    if shape[0] // f < _SSIM_WIN or shape[1] // f < _SSIM_WIN:
        after = f" after its {f}x{f} average-pool downsampling" if f > 1 else ""
        raise InputError(f"ssim needs images of at least {_SSIM_WIN}x{_SSIM_WIN} pixels{after}, "
                         f"got images of shape {shape}")


def _ssim_features(x: NDArray) -> dict:
    x = _avg_pool(x, _ssim_factor(x.shape[1:]))
    mu = _gauss_valid(x)
    return {"x": x, "mu": mu, "mu2": mu * mu, "var": _gauss_valid(x * x) - mu * mu}


def _ssim_pairs(f: dict, i: NDArray, j: NDArray) -> NDArray:
    mu_i, mu_j = f["mu"][i], f["mu"][j]
    mu_xy = mu_i * mu_j
    cov = _gauss_valid(f["x"][i] * f["x"][j]) - mu_xy
    cs = (2.0 * cov + _SSIM_C2) / (f["var"][i] + f["var"][j] + _SSIM_C2)
    lum = (2.0 * mu_xy + _SSIM_C1) / (f["mu2"][i] + f["mu2"][j] + _SSIM_C1)
    return np.mean(lum * cs, axis=(1, 2))


def _gmsd_check(shape: tuple[int, int]) -> None:
    if min(shape) < 3:
        raise InputError("gmsd needs images of at least 3x3 pixels (2x2 after its 2x2 "
                         f"average pooling), got images of shape {shape}")


def _gmsd_features(x: NDArray) -> dict:
    pad = max(x.shape[1] % 2, x.shape[2] % 2)     # piq pads bottom/right of both axes
    gx, gy = _prewitt(_avg_pool(x, 2, 0, pad))
    m = np.sqrt(gx * gx + gy * gy)
    return {"m": m, "m2": m * m}


def _gmsd_pairs(f: dict, i: NDArray, j: NDArray) -> NDArray:
    gms = _similarity(f["m"][i], f["m"][j], f["m2"][i], f["m2"][j], _GMSD_T)
    return np.std(gms, axis=(1, 2))


def _mdsi_check(shape: tuple[int, int]) -> None:
    k, lo, hi = _mdsi_pool(shape)
    if min((s + lo + hi) // k for s in shape) < 2:
        after = f" after its {k}x{k} average pooling" if k > 1 else ""
        raise InputError(f"mdsi needs images of at least 2x2 pixels{after}, "
                         f"got images of shape {shape}")


def _mdsi_features(x: NDArray) -> dict:
    g = _avg_pool(x * 255.0, *_mdsi_pool(x.shape[1:]))
    gx, gy = _prewitt(g * _LHM_L)
    m = np.sqrt(gx * gx + gy * gy)
    chroma = g * _MDSI_CHROMA
    return {"gx": gx, "gy": gy, "m": m, "m2": m * m, "c": chroma, "c2": chroma * chroma}


def _mdsi_maps(f: dict, i: NDArray, j: NDArray) -> tuple[NDArray, NDArray]:
    """Parts of the combined map gcs(x=i, y=j) = sym + anti; gcs(x=j, y=i) = sym - anti."""
    m_x, m_y, m2_x, m2_y = f["m"][i], f["m"][j], f["m2"][i], f["m2"][j]
    # gradient map of the average image: the gradient is linear, so average the gradients
    ax, ay = (f["gx"][i] + f["gx"][j]) / 2.0, (f["gy"][i] + f["gy"][j]) / 2.0
    m_a = np.sqrt(ax * ax + ay * ay)
    m2_a = m_a * m_a
    cs = _similarity(f["c"][i], f["c"][j], f["c2"][i], f["c2"][j], _MDSI_C3)
    sym = (_MDSI_ALPHA * _similarity(m_x, m_y, m2_x, m2_y, _MDSI_C1)
           + (1.0 - _MDSI_ALPHA) * cs)
    anti = _MDSI_ALPHA * (_similarity(m_x, m_a, m2_x, m2_a, _MDSI_C2)
                          - _similarity(m_y, m_a, m2_y, m2_a, _MDSI_C2))
    return sym, anti


def _mdsi_score(gcs: NDArray) -> NDArray:
    """Deviation pooling of the combined similarity maps gcs of shape (n, h, w)."""
    # gcs ** q on the principal complex branch (phase pi for negative values), as piq
    r = np.sqrt(np.sqrt(np.abs(gcs)))             # |gcs| ** 0.25
    neg = gcs < 0
    if neg.any():
        re = np.where(neg, r * _NEG_RE, r)
        im = np.where(neg, r * _NEG_IM, 0.0)
        d_re = re - re.mean(axis=(1, 2), keepdims=True)
        d_im = im - im.mean(axis=(1, 2), keepdims=True)
        dev = np.sqrt(d_re * d_re + d_im * d_im)
    else:
        dev = np.abs(r - r.mean(axis=(1, 2), keepdims=True))
    return np.mean(dev, axis=(1, 2)) ** _MDSI_O   # rho = 1


def _mdsi_pairs(f: dict, i: NDArray, j: NDArray) -> NDArray:
    sym, anti = _mdsi_maps(f, i, j)
    return _mdsi_score(sym + anti)


def _mdsi_both(f: dict, i: NDArray, j: NDArray) -> tuple[NDArray, NDArray]:
    sym, anti = _mdsi_maps(f, i, j)
    return _mdsi_score(sym + anti), _mdsi_score(sym - anti)


_SPECS = {
    "psnr": _Spec("psnr", lambda x: {"x": x}, _psnr_pairs, lambda shape: None),
    "ssim": _Spec("ssim", _ssim_features, _ssim_pairs, _ssim_check),
    "gmsd": _Spec("gmsd", _gmsd_features, _gmsd_pairs, _gmsd_check),
    "mdsi": _Spec("mdsi", _mdsi_features, _mdsi_pairs, _mdsi_check, _mdsi_both),
}


def _run_pairs(fn: Callable, feats: dict, i: NDArray, j: NDArray, npix: int,
               n_out: int = 1) -> list[NDArray]:
    """Evaluate fn(feats, i, j) over memory-bounded chunks of the pair list."""
    out = [np.empty(len(i), dtype=np.float64) for _ in range(n_out)]
    step = max(1, _CHUNK_ELEMENTS // max(npix, 1))
    for s in range(0, len(i), step):
        res = fn(feats, i[s:s + step], j[s:s + step])
        for o, r in zip(out, res if n_out > 1 else (res,)):
            o[s:s + step] = r
    return out


def _apply(spec: _Spec, x: ArrayLike, y: ArrayLike, data_range: float) -> FloatOrArray:
    dr = _data_range(data_range)
    xa, ya = _as_images(x, "x"), _as_images(y, "y")
    x3 = xa[None] if xa.ndim == 2 else xa
    y3 = ya[None] if ya.ndim == 2 else ya
    nx, ny = len(x3), len(y3)
    if x3.shape[1:] != y3.shape[1:] or (nx != ny and 1 not in (nx, ny)):
        raise InputError(f"x and y must have the same shape, got {xa.shape} and {ya.shape}")
    spec.check(x3.shape[1:])
    n = max(nx, ny) if min(nx, ny) > 0 else 0
    feats = spec.features(np.concatenate([x3, y3]) / dr)
    i = np.arange(n) if nx == n else np.zeros(n, dtype=np.intp)
    j = nx + (np.arange(n) if ny == n else np.zeros(n, dtype=np.intp))
    vals, = _run_pairs(spec.pairs, feats, i, j, x3.shape[1] * x3.shape[2])
    return float(vals[0]) if xa.ndim == 2 and ya.ndim == 2 else vals


# ------------------------------------------------------------------------- public API
_SHARED_DOC = """
    Parameters
    ----------
    x : ndarray of shape (ky, kx) or ndarray of shape (n, ky, kx)
        First argument{x_role}.
    y : ndarray of shape (ky, kx) or ndarray of shape (n, ky, kx)
        Second argument{y_role}; same shape as `x` (a single image of shape (ky, kx) is
        also compared with every image of a batch, either way round).
    data_range : float, optional
        Value range of the images (default 1.0); both are divided by it, as piq does.

    Returns
    -------
    float or ndarray of shape (n,)
        A float when `x` and `y` are single images, else one value per pair.

    Raises
    ------
    InputError
        If the shapes differ, an input is not 2-D or 3-D, holds NaN/inf or non-real
        values, the images are smaller than {minimum}, or `data_range` <= 0.
"""


def _metric_doc(summary: str, minimum: str, x_role: str = "", y_role: str = "") -> Callable:
    """Give a metric its numpydoc docstring: `summary` plus the shared sections."""
    def decorate(fn: Callable) -> Callable:
        fn.__doc__ = summary + _SHARED_DOC.format(minimum=minimum, x_role=x_role,
                                                  y_role=y_role)
        return fn
    return decorate


@_metric_doc("""Peak signal-to-noise ratio in dB, with piq 0.8.0's conventions.

    ``-10 log10(MSE + 1e-8)`` of the images divided by `data_range`, so identical images
    give 80 dB (not infinity). Higher = more similar. Symmetric in `x` and `y`.
""", minimum="1x1 pixels")
def psnr(x: ArrayLike, y: ArrayLike, *, data_range: float = 1.0) -> FloatOrArray:
    return _apply(_SPECS["psnr"], x, y, data_range)


@_metric_doc("""Structural similarity index (Wang et al. 2004), with piq 0.8.0's conventions.

    11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, population (co)variances,
    'valid' filtering (no padding), after average-pool downsampling by
    ``max(1, round(min(ky, kx) / 256))``. When min(ky, kx) < 384 (no downsampling) this
    equals scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1)``. Higher = more similar, 1 = identical.
    Symmetric in `x` and `y`.
""", minimum="11x11 pixels after the downsampling")
def ssim(x: ArrayLike, y: ArrayLike, *, data_range: float = 1.0) -> FloatOrArray:
    return _apply(_SPECS["ssim"], x, y, data_range)


@_metric_doc("""Gradient magnitude similarity deviation (Xue et al. 2013), as piq 0.8.0.

    The images are zero-padded to even size and 2x2 average-pooled, Prewitt gradients
    (kernel / 3, zero padding 1) give gradient magnitudes m, the similarity map is
    ``(2 m_x m_y + t) / (m_x^2 + m_y^2 + t)`` with ``t = 170 / 255^2`` and the result is
    its population standard deviation. Lower = more similar, 0 = identical.
    Symmetric in `x` and `y`.
""", minimum="3x3 pixels (2x2 after the pooling)")
def gmsd(x: ArrayLike, y: ArrayLike, *, data_range: float = 1.0) -> FloatOrArray:
    return _apply(_SPECS["gmsd"], x, y, data_range)


@_metric_doc("""Mean deviation similarity index (Nafchi et al. 2016), as piq 0.8.0.

    The grey images are repeated to RGB and scaled to 0-255; when min(ky, kx) >= 384 they
    are average-pooled by ``round(min(ky, kx) / 256)``. Gradient similarity (c1 = 140,
    c2 = 55, Prewitt on the L channel, including the similarities to the average image)
    and chromaticity similarity (c3 = 550) are combined by 'sum' with alpha = 0.6, raised
    to q = 0.25 on the complex plane, and the mean absolute deviation from their mean is
    raised to o = 0.25. Lower = more similar, 0 = identical. NOT symmetric: `x` is the
    distorted image and `y` the reference, so ``mdsi(x, y) != mdsi(y, x)`` in general.
""", minimum="2x2 pixels after the pooling", x_role=" (distorted image)",
             y_role=" (reference image)")
def mdsi(x: ArrayLike, y: ArrayLike, *, data_range: float = 1.0) -> FloatOrArray:
    return _apply(_SPECS["mdsi"], x, y, data_range)


METRICS: dict[str, Callable[..., FloatOrArray]] = {
    "psnr": psnr, "ssim": ssim, "gmsd": gmsd, "mdsi": mdsi}
"""Metric name -> function."""

HIGHER_IS_SIMILAR: dict[str, bool] = {"psnr": True, "ssim": True, "gmsd": False, "mdsi": False}
"""Metric name -> True when a higher value means more similar images."""


def pairwise(images: ArrayLike, metric: Union[str, Callable[..., FloatOrArray]], *,
             data_range: float = 1.0) -> NDArray[np.float64]:
    """Metric between every ordered pair of a stack of images.

    All k*k pairs are computed as one batch (in memory-bounded chunks); per-image
    quantities (filtered means, gradients) are computed once, and only the pairs i <= j
    are evaluated: mirrored for the symmetric metrics (psnr, ssim, gmsd), and for mdsi
    both orders are derived from the shared symmetric and antisymmetric parts of its
    combined similarity map.

    Parameters
    ----------
    images : ndarray of shape (k, ky, kx)
        The patterns to compare.
    metric : {"psnr", "ssim", "gmsd", "mdsi"} or callable
        Metric name, or a function with the signature of `psnr` (``f(x, y, *,
        data_range)`` taking batches of shape (n, ky, kx) and returning shape (n,)).
    data_range : float, optional
        Value range of the images (default 1.0).

    Returns
    -------
    ndarray of shape (k, k)
        Entry ``[i, j]`` is ``metric(images[i], images[j])``: row i is the first argument
        (the distorted image for mdsi), column j the second. The diagonal holds the
        identical-image value (psnr 80, ssim 1, gmsd 0, mdsi 0). Use `HIGHER_IS_SIMILAR`
        for the direction.

    Raises
    ------
    InputError
        If `images` is not 3-D, holds NaN/inf, is too small for the metric, `metric` is
        unknown, or `data_range` <= 0.
    """
    if isinstance(metric, str) and metric in _SPECS:
        spec: Optional[_Spec] = _SPECS[metric]
    elif callable(metric) and not isinstance(metric, str):
        spec = next((_SPECS[n] for n, fn in METRICS.items() if fn is metric), None)
    else:
        raise InputError(f"metric must be one of {', '.join(map(repr, _SPECS))} "
                         f"or a callable, got {metric!r}")
    dr = _data_range(data_range)
    imgs = _as_images(images, "images", ndims=(3,))
    k = len(imgs)
    if spec is None:
        i, j = np.divmod(np.arange(k * k), k)
        vals = np.asarray(metric(imgs[i], imgs[j], data_range=dr), dtype=np.float64)
        return vals.reshape(k, k)
    spec.check(imgs.shape[1:])
    feats = spec.features(imgs / dr)
    npix = imgs.shape[1] * imgs.shape[2]
    out = np.empty((k, k), dtype=np.float64)
    i, j = np.triu_indices(k)
    if spec.both is None:
        out[i, j] = out[j, i] = _run_pairs(spec.pairs, feats, i, j, npix)[0]
    else:
        out[i, j], out[j, i] = _run_pairs(spec.both, feats, i, j, npix, n_out=2)
    return out


def nsd(images: ArrayLike) -> FloatOrArray:
    """Noise standard deviation as defined in the paper: the population std of the pixels.

    ``sqrt(mean((I - mean(I))^2))`` over the pixels of each image (not a noise estimate
    in the strict sense: structure counts too; see `immerkaer_sigma` for that).

    Parameters
    ----------
    images : ndarray of shape (ky, kx) or ndarray of shape (n, ky, kx)
        One image or a batch.

    Returns
    -------
    float or ndarray of shape (n,)
        A float for a single image, else one value per image.

    Raises
    ------
    InputError
        If `images` is not 2-D or 3-D or holds NaN/inf values.
    """
    a = _as_images(images, "images")
    s = np.std(a, axis=(-2, -1))
    return float(s) if a.ndim == 2 else s


def immerkaer_sigma(images: ArrayLike) -> FloatOrArray:
    """Immerkaer's fast estimate of the standard deviation of additive Gaussian noise.

    The image is convolved with the Laplacian-difference kernel
    ``[[1, -2, 1], [-2, 4, -2], [1, -2, 1]]`` (which cancels locally linear structure) and
    ``sigma = sqrt(pi / 2) / (6 (kx - 2) (ky - 2)) * sum(|conv|)`` over the valid interior.
    A constant image gives 0.

    Parameters
    ----------
    images : ndarray of shape (ky, kx) or ndarray of shape (n, ky, kx)
        One image or a batch, at least 3x3 pixels.

    Returns
    -------
    float or ndarray of shape (n,)
        A float for a single image, else one value per image.

    Raises
    ------
    InputError
        If `images` is not 2-D or 3-D, smaller than 3x3 pixels or holds NaN/inf values.

    References
    ----------
    J. Immerkaer, "Fast noise variance estimation", Computer Vision and Image
    Understanding 64 (1996) 300-302.
    """
    a = _as_images(images, "images")
    ky, kx = a.shape[-2:]
    if ky < 3 or kx < 3:
        raise InputError(f"immerkaer_sigma needs images of at least 3x3 pixels, "
                         f"got shape {a.shape}")
    # The kernel is the outer product of [1, -2, 1] with itself: two second differences.
    d = a[..., :-2, :] - 2.0 * a[..., 1:-1, :] + a[..., 2:, :]
    d = d[..., :-2] - 2.0 * d[..., 1:-1] + d[..., 2:]
    s = math.sqrt(math.pi / 2.0) / (6.0 * (kx - 2) * (ky - 2)) * np.abs(d).sum(axis=(-2, -1))
    return float(s) if a.ndim == 2 else s
