"""Learned denoiser ("ePattern" of the reference paper): a convolutional autoencoder.

``--filter denoise`` trains a small encoder -> dense latent -> decoder network on the
dataset's own diffraction patterns and replaces every pattern by its reconstruction.
The latent bottleneck keeps what recurs across the scan (the grains' spot patterns,
their intensity variations) and drops most of the Poisson counting noise.

Training target. The network is trained Noise2Noise-style: the input is the pattern at
scan position (y, x) and the target is the pattern at a 4-neighbour (y±1, x) / (y, x±1)
(the direction is swapped at random each epoch). Within a grain neighbours share the
same expected pattern but carry independent Poisson noise, so the loss is minimised by
predicting the clean expected counts and never by copying the input's noise (which an
autoencoder with a generous latent otherwise learns to do, given enough epochs). The
loss is the Poisson negative log-likelihood (``PoissonNLLLoss(log_input=False)``) of
the target counts given the non-negative (softplus) network output: it is the correct
likelihood for counts, does not let the few bright direct-beam pixels dominate as a
squared error would, and is minimised in expectation by the neighbour's mean. At
inference pattern (y, x) is reconstructed from its own input.

Everything torch is imported lazily, so ``import nmf4d.filters.denoise`` works without
torch; the filter itself then raises :class:`~nmf4d.errors.MissingDependencyError`.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Any

import dask.array as da
import numpy as np

from ..arrays import validate_4d
from ..errors import InputError, MissingDependencyError
from ..execution.device import resolve_device
MODEL_FORMAT = "nmf4d-denoise-autoencoder"
MODEL_VERSION = 1
CHANNELS = (16, 32, 64)          # conv channels of the encoder (decoder mirrors them)
STRIDE = 2 ** len(CHANNELS)      # total stride: patterns are padded to a multiple of it
MIN_PATTERN = 16
TARGET = "noise2noise-neighbour+poisson-nll"


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("the denoise filter", "PyTorch", "denoise") from None
    return torch


# ------------------------------------------------------------------------------ model
def _padded(shape: tuple[int, int]) -> tuple[int, int]:
    return tuple(int(math.ceil(s / STRIDE) * STRIDE) for s in shape)  # type: ignore


def _build_net(pattern_shape: tuple[int, int], latent: int):
    """The autoencoder (an ``nn.Module``) for patterns of ``pattern_shape``."""
    torch = _torch()
    nn = torch.nn
    py, px = _padded(pattern_shape)
    hy, hx = py // STRIDE, px // STRIDE
    c_last = CHANNELS[-1]

    class AutoEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            enc, c_in = [], 1
            for c in CHANNELS:
                enc += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.ReLU()]
                c_in = c
            self.encoder = nn.Sequential(*enc, nn.Flatten(),
                                         nn.Linear(c_last * hy * hx, latent))
            self.expand = nn.Sequential(nn.Linear(latent, c_last * hy * hx), nn.ReLU())
            dec = []
            outs = list(CHANNELS[-2::-1]) + [1]
            for i, c in enumerate(outs):
                dec.append(nn.ConvTranspose2d(c_in, c, 4, stride=2, padding=1))
                if i < len(outs) - 1:
                    dec.append(nn.ReLU())
                c_in = c
            self.decoder = nn.Sequential(*dec)
            self.out = nn.Softplus()

        def forward(self, x):
            z = self.encoder(x)
            h = self.expand(z).view(-1, c_last, hy, hx)
            return self.out(self.decoder(h))

    return AutoEncoder()


class DenoiseModel:
    """A trained denoiser: the network plus what is needed to apply it.

    Attributes
    ----------
    net : torch.nn.Module
    latent : int
    pattern_shape : (int, int)
        (ky, kx) of the patterns it was trained on.
    scale : float
        Intensity scale: patterns are divided by it before the network, multiplied after.
    path : str or None
        File it was loaded from or saved to.
    """

    def __init__(self, net, *, latent: int, pattern_shape: tuple[int, int], scale: float,
                 path: str | None = None):
        self.net = net
        self.latent = int(latent)
        self.pattern_shape = (int(pattern_shape[0]), int(pattern_shape[1]))
        self.scale = float(scale)
        self.path = path

    def to_dict(self) -> dict[str, Any]:
        return {"format": MODEL_FORMAT, "version": MODEL_VERSION,
                "arch": {"latent": self.latent, "channels": list(CHANNELS)},
                "pattern_shape": list(self.pattern_shape), "scale": self.scale,
                "state_dict": {k: v.detach().cpu().clone()
                               for k, v in self.net.state_dict().items()}}

    def save(self, path: str | os.PathLike) -> str:
        """Save atomically (:func:`nmf4d.outputs.atomic_path`; an existing file is
        replaced)."""
        from ..outputs import atomic_path

        torch = _torch()
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise InputError(f"save_model: folder {folder!r} does not exist")
        with atomic_path(path, overwrite=True) as tmp, open(tmp, "wb") as fh:
            torch.save(self.to_dict(), fh)
        self.path = path
        return path

    def __repr__(self) -> str:
        return (f"DenoiseModel(latent={self.latent}, pattern_shape={self.pattern_shape}, "
                f"scale={self.scale:g}, path={self.path!r})")


def load_model(path: str | os.PathLike, *, pattern_shape=None) -> DenoiseModel:
    """Load a model saved with ``denoise_filter(save_model=path)``.

    Parameters
    ----------
    path : str or path-like
    pattern_shape : (int, int), optional
        If given, raise :class:`InputError` unless the model was trained on this shape.

    Returns
    -------
    DenoiseModel
        Accepted by ``denoise_filter(model=...)`` (on CPU until used).
    """
    torch = _torch()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"denoise model file {path!r} does not exist")
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"cannot read denoise model {path!r}: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                         ) from None
    if not (isinstance(d, dict) and d.get("format") == MODEL_FORMAT):
        raise InputError(f"{path!r} is not an nmf4d denoise model")
    if d.get("version") != MODEL_VERSION or list(d["arch"].get("channels", [])) != list(CHANNELS):
        raise InputError(f"{path!r} was saved by an incompatible version of nmf4d "
                         f"(format version {d.get('version')!r})")
    shape = tuple(int(s) for s in d["pattern_shape"])
    net = _build_net(shape, int(d["arch"]["latent"]))
    try:
        net.load_state_dict(d["state_dict"])
    except Exception as exc:
        raise InputError(f"denoise model {path!r} is corrupt: {type(exc).__name__}") from None
    model = DenoiseModel(net, latent=int(d["arch"]["latent"]), pattern_shape=shape,
                         scale=float(d["scale"]), path=path)
    if pattern_shape is not None:
        _check_shape(model, tuple(int(s) for s in pattern_shape))
    return model


def _check_shape(model: DenoiseModel, shape: tuple[int, int]) -> None:
    if tuple(model.pattern_shape) != tuple(shape):
        where = f" ({model.path})" if model.path else ""
        raise InputError(f"denoise model{where} was trained on {model.pattern_shape[0]}x"
                         f"{model.pattern_shape[1]} patterns, the data have {shape[0]}x"
                         f"{shape[1]}")


# ---------------------------------------------------------------------------- helpers
def _check_int(value: Any, name: str, lo: int) -> int:
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            and value >= lo):
        raise InputError(f"{name} must be an int >= {lo}, got {value!r}")
    return int(value)


def _pairs(scan_shape: tuple[int, int], n: int, rng: np.random.Generator):
    """``n`` random positions (flat indices, distinct when possible) and one random
    4-neighbour of each (the position itself when the scan is 1x1)."""
    sy, sx = scan_shape
    total = sy * sx
    idx = rng.choice(total, size=min(n, total), replace=False)
    y, x = np.divmod(idx, sx)
    steps = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])
    ny, nx = y.copy(), x.copy()
    for i in range(len(idx)):
        ok = [(dy, dx) for dy, dx in steps
              if 0 <= y[i] + dy < sy and 0 <= x[i] + dx < sx]
        if ok:
            dy, dx = ok[rng.integers(len(ok))]
            ny[i], nx[i] = y[i] + dy, x[i] + dx
    return (y, x), (ny, nx)


def _gather(data, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Patterns at scan positions (ys, xs) as float32 (n, ky, kx); dask reads only them."""
    if isinstance(data, da.Array):
        order = np.lexsort((xs, ys))   # sorted reads, then back to the asked order
        out = np.asarray(data.vindex[ys[order], xs[order]].compute(), dtype=np.float32)
        res = np.empty_like(out)
        res[order] = out
        return res
    return np.asarray(data[ys, xs], dtype=np.float32)


def _to_tensor(torch, patterns: np.ndarray, scale: float, padded, device):
    """(n, ky, kx) counts -> (n, 1, py, px) scaled float tensor, zero-padded."""
    n, ky, kx = patterns.shape
    t = torch.zeros((n, 1) + tuple(padded), dtype=torch.float32)
    t[:, 0, :ky, :kx] = torch.from_numpy(np.ascontiguousarray(patterns)) / scale
    return t.to(device)


# ------------------------------------------------------------------------------ filter
def denoise_filter(data, **options):
    """Denoise every pattern with a convolutional autoencoder trained on the data.

    See :func:`_denoise` for the parameters. Returns ``(denoised, info)``.
    """
    out, info, _ = _denoise(data, **options)
    return out, info


def _denoise(data, *, epochs: int = 30, batch_size: int = 64, latent: int = 32,
             lr: float = 1e-3, seed: int = 0, device: str = "auto", model=None,
             save_model=None, progress: bool = True, max_train: int = 4096):
    """Denoise every pattern with a convolutional autoencoder trained on the data.

    Parameters
    ----------
    data : ndarray or dask array of shape (scan_y, scan_x, ky, kx)
        Non-negative counts; patterns at least 16x16.
    epochs : int
        Passes over the training pairs (ignored when ``model`` is given).
    batch_size : int
        Patterns per optimisation step (reconstruction uses 4x larger batches).
    latent : int
        Size of the dense latent code.
    lr : float
        Adam learning rate.
    seed : int
        Seeds the choice of training positions/neighbours, the weights and the batch
        order: on CPU the same seed gives the same output.
    device : {"auto", "cpu", "cuda"}
        "auto" uses CUDA when available.
    model : str, path-like or DenoiseModel, optional
        A saved model (path) or one from :func:`load_model`: reused without training.
    save_model : str or path-like, optional
        Save the (trained or reused) model there, atomically.
    progress : bool
        Show a tqdm bar over epochs (on stderr) with the training loss.
    max_train : int
        At most this many random scan positions (each with one neighbour) are read and
        used for training.

    Returns
    -------
    denoised : ndarray float32 of the input's shape, in the input's units (counts)
    info : dict
        method, target, epochs (trained; 0 when reused), latent, seed, device,
        final_loss (None when reused), loss_history (per-epoch mean Poisson NLL),
        trained, model_path.
    model : DenoiseModel
        The trained (or reused) model.
    """
    torch = _torch()
    data = data if isinstance(data, da.Array) else np.asarray(data)
    validate_4d(data)
    sy, sx, ky, kx = (int(s) for s in data.shape)
    if ky < MIN_PATTERN or kx < MIN_PATTERN:
        raise InputError(f"the denoise filter needs patterns of at least {MIN_PATTERN}x"
                         f"{MIN_PATTERN} pixels, got {ky}x{kx}")
    epochs = _check_int(epochs, "epochs", 1)
    batch_size = _check_int(batch_size, "batch_size", 1)
    latent = _check_int(latent, "latent", 1)
    max_train = _check_int(max_train, "max_train", 1)
    seed = _check_int(seed, "seed", 0)
    if not (isinstance(lr, (int, float, np.floating)) and not isinstance(lr, bool)
            and math.isfinite(lr) and lr > 0):
        raise InputError(f"lr must be a positive number, got {lr!r}")
    dev = resolve_device(device, field="execution.device")

    if model is not None and not isinstance(model, DenoiseModel):
        if isinstance(model, (str, os.PathLike)):
            model = load_model(model)
        else:
            raise InputError(f"model must be a path or a DenoiseModel from load_model, got "
                             f"{type(model).__name__}")
    if model is not None:
        _check_shape(model, (ky, kx))

    det_before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        history: list[float] = []
        trained = model is None
        if trained:
            model, history = _train(torch, data, epochs=epochs, batch_size=batch_size,
                                    latent=latent, lr=lr, seed=seed, device=dev,
                                    progress=progress, max_train=max_train)
        out = _reconstruct(torch, model, data, batch=4 * batch_size, device=dev)
    finally:
        torch.use_deterministic_algorithms(det_before)
    model.net.to("cpu")
    if save_model is not None:
        model.save(save_model)
    info = {"method": "conv-autoencoder", "target": TARGET,
            "epochs": epochs if trained else 0, "latent": model.latent, "seed": seed,
            "device": dev, "final_loss": float(history[-1]) if history else None,
            "loss_history": [float(v) for v in history], "trained": trained,
            "model_path": model.path, "scale": model.scale}
    return out, info, model


def _train(torch, data, *, epochs, batch_size, latent, lr, seed, device, progress,
           max_train):
    from tqdm.auto import tqdm

    sy, sx, ky, kx = data.shape
    rng = np.random.default_rng(seed)
    (y, x), (ny, nx) = _pairs((sy, sx), max_train, rng)
    a = _gather(data, y, x)
    b = _gather(data, ny, nx)
    # Robust global intensity scale: mean pattern sum of the training patterns spread over
    # the pixels (mean pixel value), so that the scaled patterns average about 1 per pixel.
    scale = float(np.mean(a.sum(axis=(1, 2), dtype=np.float64))) / (ky * kx)
    if not (math.isfinite(scale) and scale > 0):
        scale = 1.0
    padded = _padded((ky, kx))
    ta = _to_tensor(torch, a, scale, padded, "cpu")
    tb = _to_tensor(torch, b, scale, padded, "cpu")
    del a, b
    mask = torch.zeros((1, 1) + padded, dtype=torch.float32)
    mask[..., :ky, :kx] = 1.0
    mask = mask.to(device)

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = _build_net((ky, kx), latent).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    nll = torch.nn.PoissonNLLLoss(log_input=False, full=False, eps=1e-6, reduction="none")
    n = ta.shape[0]
    history: list[float] = []
    bar = tqdm(range(epochs), desc="denoise", unit="epoch", file=sys.stderr,
               disable=not progress, leave=False)
    net.train()
    for _ in bar:
        perm = torch.randperm(n, generator=gen)
        swap = torch.rand(n, generator=gen) < 0.5     # direction of each pair this epoch
        total, count = 0.0, 0
        for s in range(0, n, batch_size):
            idx = perm[s:s + batch_size]
            sw = swap[idx].view(-1, 1, 1, 1)
            inp = torch.where(sw, tb[idx], ta[idx]).to(device)
            tgt = torch.where(sw, ta[idx], tb[idx]).to(device)
            pred = net(inp)
            loss = (nll(pred, tgt) * mask).sum() / (mask.sum() * len(idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        history.append(total / count)
        bar.set_postfix(loss=f"{history[-1]:.4g}")
    bar.close()
    net.eval()
    return DenoiseModel(net, latent=latent, pattern_shape=(ky, kx), scale=scale), history


def _reconstruct(torch, model: DenoiseModel, data, *, batch: int, device) -> np.ndarray:
    """Reconstruct every pattern from its own input, in batches (dask: by scan rows)."""
    sy, sx, ky, kx = data.shape
    padded = _padded((ky, kx))
    net = model.net.to(device)
    net.eval()
    out = np.empty((sy, sx, ky, kx), dtype=np.float32)
    flat_out = out.reshape(sy * sx, ky, kx)

    def run(patterns: np.ndarray, start: int) -> None:
        for s in range(0, patterns.shape[0], batch):
            t = _to_tensor(torch, np.asarray(patterns[s:s + batch], dtype=np.float32),
                           model.scale, padded, device)
            with torch.no_grad():
                r = net(t)[:, 0, :ky, :kx] * model.scale
            flat_out[start + s:start + s + r.shape[0]] = r.cpu().numpy()

    if isinstance(data, da.Array):
        r0 = 0
        for rows in data.chunks[0]:
            block = np.asarray(data[r0:r0 + rows].compute())
            run(block.reshape(rows * sx, ky, kx), r0 * sx)
            r0 += rows
    else:
        run(data.reshape(sy * sx, ky, kx), 0)
    np.maximum(out, 0, out=out)
    return out



def pipeline_filter(data, **options):
    """:func:`denoise_filter` as the ``denoise`` entry of :data:`nmf4d.filters.FILTERS`:
    returns ``(denoised, info, artifacts)``, with the trained model in
    ``artifacts["denoiser"]`` (none when a saved model was reused) for the caller to
    save beside the results."""
    out, info, model = _denoise(data, **options)
    return out, info, ({"denoiser": model} if info["trained"] else {})
