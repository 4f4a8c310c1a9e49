"""The worker's root logger is not left at DEBUG by Faust's terminal spinner."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from pipeline.stream.logs import quiet_root_logger


class SpinnerHandler(logging.Handler):  # named like Faust's, which wants every record
    def emit(self, record: logging.LogRecord) -> None:
        pass


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    logger = logging.getLogger()
    saved = logger.level, list(logger.handlers)
    yield logger
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]


def test_root_logger_rises_to_the_lowest_real_handler_level(root: logging.Logger) -> None:
    root.handlers[:] = [logging.StreamHandler(), SpinnerHandler(logging.DEBUG)]
    root.handlers[0].setLevel(logging.WARNING)
    root.setLevel(logging.DEBUG)  # what faust.Worker does at `-l warn`
    quiet_root_logger()
    assert root.level == logging.WARNING
    assert not logging.getLogger("aiokafka.producer").isEnabledFor(logging.DEBUG)


def test_root_logger_left_alone_when_a_handler_wants_debug(root: logging.Logger) -> None:
    root.handlers[:] = [logging.StreamHandler()]
    root.handlers[0].setLevel(logging.DEBUG)
    root.setLevel(logging.DEBUG)  # `-l debug`: the operator asked for everything
    quiet_root_logger()
    assert root.level == logging.DEBUG
    root.handlers[:] = []
    quiet_root_logger()  # no handlers: nothing to go by, nothing changed
    assert root.level == logging.DEBUG
