"""What can go wrong calibrating: too few answers, or input the fit cannot use."""

from __future__ import annotations


class CalibrationError(ValueError):
    """The fit cannot be made; the message says what is missing and what to change."""
