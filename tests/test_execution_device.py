"""Tests of nmf4d.execution.device: the one resolver of --device."""
import os
import subprocess
import sys

import pytest

from nmf4d.cli_options import describe_error
from nmf4d.errors import ConfigError, MissingDependencyError
from nmf4d.execution import check_device_name, resolve_device, torch_available


def _has_cuda():
    if not torch_available():
        return False
    import torch
    return torch.cuda.is_available()


HAS_CUDA = _has_cuda()


def test_names():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if HAS_CUDA else "cpu")
    assert check_device_name(" CUDA:1 ") == "cuda:1"
    for bad in ("tpu", "cuda:x", "gpu", ""):
        with pytest.raises(ConfigError) as err:
            resolve_device(bad)
        assert err.value.field == "execution.device"
        assert describe_error(err.value).startswith(f"--device {bad}: is not allowed")


@pytest.mark.skipif(HAS_CUDA or not torch_available(), reason="needs torch without a GPU")
@pytest.mark.parametrize("value", ["cuda", "cuda:0", "CUDA"])
def test_cuda_without_gpu(value):
    with pytest.raises(ConfigError) as err:
        resolve_device(value)
    msg = describe_error(err.value)
    assert msg == f"--device {value}: torch sees no CUDA GPU; use cpu"


def test_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)   # makes `import torch` fail
    assert not torch_available()
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(MissingDependencyError, match=r'needs PyTorch: pip install "nmf4d\[denoise\]"'):
        resolve_device("cuda")


def test_package_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import nmf4d.nmf, nmf4d.nmf._torch, nmf4d.filters.denoise\n"
            "from nmf4d.execution import resolve_device, torch_available\n"
            "assert not torch_available() and resolve_device('auto') == 'cpu'\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
