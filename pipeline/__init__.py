"""Customer-journey event pipeline: whole-journey experience scores from every department."""

# First: decides whether the engine's modules load compiled or from their source.
from pipeline import compiled as _compiled  # noqa: F401

__version__ = "0.1.0"
__all__ = ["__version__"]
