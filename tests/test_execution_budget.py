"""Tests of nmf4d.execution.budget: the memory budget and block sizes."""
import pytest

from nmf4d.errors import ConfigError
from nmf4d.execution import block_rows, format_bytes, parse_memory, physical_memory


@pytest.mark.parametrize("text, value", [("2GB", 2 * 2**30), ("512MB", 512 * 2**20),
                                         ("1.5 GiB", int(1.5 * 2**30)), (2**27, 2**27)])
def test_parse_memory(text, value):
    assert parse_memory(text) == value


def test_parse_memory_default_and_errors():
    assert parse_memory(None) == int(0.5 * physical_memory())
    for bad in ("lots", "2XB", "-1GB", "1MB"):
        with pytest.raises(ConfigError, match="execution.memory"):
            parse_memory(bad)


def test_block_rows_fit_budget():
    rows = block_rows(128 * 128, 2 * 2**30, n_workers=2)
    assert rows * 128 * 128 * 4 * 4 * 2 <= 2 * 2**30 // 3
    assert block_rows(10**9, 2**26) == 1


def test_format_bytes():
    assert [format_bytes(n) for n in (0, 512, 1536, 3 * 2**30, 5 * 2**40)] == \
        ["0 B", "512 B", "1.5 KiB", "3.0 GiB", "5.0 TiB"]
