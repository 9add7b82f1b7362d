"""nmf4d: 4D-STEM orientation/phase clustering by non-negative matrix factorization."""
from ._version import __version__
from .errors import InputError

__all__ = ["__version__", "InputError"]
