"""The version of lanlib, in one place (read by the package, its checkpoints and its builds)."""

__version__ = "0.1.0"
