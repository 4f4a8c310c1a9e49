"""The event contract: typed touchpoints, rejections, and the validator."""

from pipeline.contract.touchpoint import CHANNELS, EVENT_TYPES, Rejection, Touchpoint

__all__ = ["CHANNELS", "EVENT_TYPES", "Rejection", "Touchpoint"]
