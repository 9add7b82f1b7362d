"""``python -m nmf4d`` is the ``nmf4d`` command."""
from .cli import main

raise SystemExit(main())
