"""The event contract: typed touchpoints, rejections, the validator and canonical JSON."""

from pipeline.contract.encode import encode_touchpoint
from pipeline.contract.rules import ATTRIBUTE_RULES, REJECTION_CODES
from pipeline.contract.touchpoint import CHANNELS, EVENT_TYPES, Rejection, Touchpoint
from pipeline.contract.validator import (
    DEFAULT_EARLIEST,
    DEFAULT_FUTURE_TOLERANCE,
    DEFAULT_MAX_BYTES,
    Validator,
    validate,
)

__all__ = [
    "ATTRIBUTE_RULES",
    "CHANNELS",
    "DEFAULT_EARLIEST",
    "DEFAULT_FUTURE_TOLERANCE",
    "DEFAULT_MAX_BYTES",
    "EVENT_TYPES",
    "REJECTION_CODES",
    "Rejection",
    "Touchpoint",
    "Validator",
    "encode_touchpoint",
    "validate",
]
