"""Exceptions shared by every stage.

:class:`InputError` marks a problem with what the user gave (a file, a parameter, the data
itself). The command line turns it into exit status 2 and a one-line message with no
traceback; library users can catch it as a :class:`ValueError`.

:class:`ConfigError` is an :class:`InputError` about one field of the analysis
configuration: it carries the field's dotted name (``"sweep.k_range"``) and value, so the
command line can name the flag (``--k-range``) instead of the field.

:class:`MissingDependencyError` is an :class:`InputError` for an optional extra that is
not installed; it names the extra to install.

Warnings: :class:`DataWarning` (the data or an option was changed or is degenerate:
axes squeezed, pixels dropped by binning, files ignored, identical patterns, ...) and
:class:`OutputWarning` (leftovers of interrupted runs removed), both
:class:`NMF4DWarning` subclasses, so library users can filter them
(``warnings.simplefilter("ignore", DataWarning)``); the command line prints each as one
line ``nmf4d: warning: ...``. :func:`warn_data` issues a DataWarning.
"""
from __future__ import annotations

import warnings
from typing import Any


class InputError(ValueError):
    """Bad input: names the parameter or file, the value, and what is allowed."""


class ConfigError(InputError):
    """A bad value of one configuration field.

    Parameters
    ----------
    field : str
        Dotted name of the field in :class:`nmf4d.config.AnalysisConfig`, e.g.
        ``"sweep.k_range"``.
    value : object
        The value given.
    reason : str
        What is wrong and what is allowed, e.g. ``"must be MIN:MAX with MAX >= MIN + 2"``.

    The message is ``"{field}={value!r}: {reason}"``.
    """

    def __init__(self, field: str, value: Any, reason: str):
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={value!r}: {reason}")


class MissingDependencyError(InputError):
    """An optional extra is not installed.

    Parameters
    ----------
    what : str
        What needs it, e.g. ``"the denoise filter"``.
    package : str
        The package that is missing, e.g. ``"PyTorch"``.
    extra : str
        The nmf4d extra that installs it, e.g. ``"denoise"``.
    """

    def __init__(self, what: str, package: str, extra: str):
        self.what = what
        self.package = package
        self.extra = extra
        super().__init__(f'{what} needs {package}: pip install "nmf4d[{extra}]"')


class NMF4DWarning(UserWarning):
    """Base class of nmf4d's warnings."""


class DataWarning(NMF4DWarning):
    """The input was changed on the way in or is degenerate (the message says how)."""


class OutputWarning(NMF4DWarning):
    """Something about the output folder worth knowing (e.g. leftovers removed)."""


def warn_data(message: str, *, stacklevel: int = 2) -> None:
    """Issue a one-line :class:`DataWarning` (from the caller's caller by default)."""
    warnings.warn(" ".join(str(message).split()), DataWarning, stacklevel=stacklevel + 1)
