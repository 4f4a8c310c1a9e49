"""The fixtures layer every test shares, one definition each.

Fixtures live in helper modules under tests/support/, listed in `pytest_plugins`; helpers
that are not fixtures are imported from the same modules. A test module never imports
another test module: what two of them share belongs here. What only one tier needs stays
in its own conftest (tests/unit: the worker's runtime without a broker; tests/integration:
chdb and the ClickHouse HTTP endpoint).
"""

import pytest

# Before the helper modules are imported: their asserts report values as a test's do.
pytest.register_assert_rewrite("tests.support")

pytest_plugins = [
    "tests.support.touchpoints",  # touchpoint_factory, and the engine played over touchpoints
    "tests.support.kafka",  # the session's local Kafka broker, topics in and out
]
