"""Exceptions shared by every stage.

`InputError` marks a problem with what the user gave (a file, a parameter, the data
itself). The command line turns it into exit status 2 and a one-line message with no
traceback; library users can catch it as a `ValueError`.
"""


class InputError(ValueError):
    """Bad input: names the parameter or file, the value, and what is allowed."""
