"""Which compute device a run uses: the CPU or a CUDA GPU through torch.

One resolver for every stage that can use a GPU (the learned denoiser and the final NMF
fit). torch is imported only when a GPU may be used.
"""
from __future__ import annotations

import os
import re
import shutil

from ..errors import ConfigError, MissingDependencyError

_CUDA_N = re.compile(r"cuda:(\d+)")


def torch_available() -> bool:
    """Return True if torch can be imported."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def nvidia_driver_present() -> bool:
    """Cheap check for an NVIDIA driver (Linux proc entry or nvidia-smi on the PATH)."""
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


def check_device_name(device, *, field: str = "execution.device") -> str:
    """Validate the form of a device name (no torch import): auto, cpu, cuda or cuda:N."""
    name = str(device).strip().lower()
    if name not in ("auto", "cpu", "cuda") and _CUDA_N.fullmatch(name) is None:
        raise ConfigError(field, device, "is not allowed; choose auto, cpu, cuda or cuda:N")
    return name


def resolve_device(device, *, field: str = "execution.device") -> str:
    """Turn a device name into a torch device string.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"} or "cuda:N"
        "auto" picks "cuda" when torch is importable and sees a CUDA GPU, else "cpu".

    Returns
    -------
    str
        "cpu", "cuda" or "cuda:N".

    Raises
    ------
    ConfigError
        For an unknown name, or a CUDA device that torch cannot provide.
    MissingDependencyError
        For a CUDA device without torch.
    """
    name = check_device_name(device, field=field)
    if name == "cpu":
        return "cpu"
    if name == "auto" and not nvidia_driver_present():
        return "cpu"      # no GPU driver: skip importing torch (about a second)
    has_torch = torch_available()
    n_gpu = 0
    if has_torch:
        import torch
        n_gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if name == "auto":
        return "cuda" if n_gpu > 0 else "cpu"
    if not has_torch:
        raise MissingDependencyError(f"device {device!r}", "PyTorch", "denoise")
    if n_gpu == 0:
        raise ConfigError(field, device, "torch sees no CUDA GPU; use cpu")
    match = _CUDA_N.fullmatch(name)
    if match is not None and int(match.group(1)) >= n_gpu:
        raise ConfigError(field, device, f"torch sees {n_gpu} CUDA GPU(s) "
                          f"(cuda:0..cuda:{n_gpu - 1}); use one of those or cpu")
    return name
