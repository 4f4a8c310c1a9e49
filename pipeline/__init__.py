"""Customer-journey event pipeline: whole-journey experience scores from every department."""

__version__ = "0.1.0"
__all__ = ["__version__"]
