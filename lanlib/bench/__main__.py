"""``python -m lanlib.bench``: see :mod:`lanlib.bench` (``--help`` for the options)."""

from . import main

if __name__ == "__main__":
    main()
