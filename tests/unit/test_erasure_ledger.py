"""The erasure ledger's pure parts: hashes, id checks, rows, replies, and the plan's tables."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.store import erasure, load_migrations
from pipeline.store.erase import (
    CUSTOMER_TABLES,
    REFRESHED_CUSTOMER_TABLES,
    blocks_of,
    dead_letter_match,
)
from pipeline.store.erasure import (
    HASH_CACHE_SIZE,
    HASHES_PER_MESSAGE,
    ErasedCustomers,
    ErasureError,
    ErasureLedger,
    ErasureOutcome,
    ErasureRequest,
    check_customer_ids,
    check_salt,
    customer_hash,
    decode_reply,
    describe,
    encode_erased,
    encode_reply,
    ledger_row,
)

SALT = "s" * 16


@given(st.text(min_size=1), st.text(min_size=1))
def test_the_ledger_knows_exactly_the_customers_added(erased: str, other: str) -> None:
    ledger = ErasureLedger(SALT, {customer_hash(SALT, erased)})
    assert ledger.is_erased(erased)
    assert ledger.is_erased(other) == (other == erased)


def test_the_hash_depends_on_the_salt_and_never_shows_the_id() -> None:
    assert customer_hash(SALT, "c-1") != customer_hash("t" * 16, "c-1")
    assert "c-1" not in customer_hash(SALT, "c-1")
    assert not ErasureLedger(None, {customer_hash(SALT, "c-1")}).is_erased("c-1")


def test_cached_answers_follow_the_ledger_and_the_salt() -> None:
    """The per-customer hash cache: asked again, a ledger answers as the first time; a
    customer added later is erased from then on; another salt's ledger is not fooled by
    the cache; a repeated question hashes nothing."""
    ledger = ErasureLedger(SALT, {customer_hash(SALT, "gone")})
    other_salt = ErasureLedger("t" * 16, {customer_hash(SALT, "gone")})
    for _ in range(3):
        assert ledger.is_erased("gone") and not ledger.is_erased("kept")
        assert not other_salt.is_erased("gone")
    ledger.add([customer_hash(SALT, "kept")])
    assert ledger.is_erased("kept")
    before = erasure._cached_hash.cache_info()
    assert ledger.is_erased("gone") and ledger.is_erased("kept")
    after = erasure._cached_hash.cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (2, 0)


def test_the_hash_cache_is_bounded_and_stays_right_past_its_size() -> None:
    ledger = ErasureLedger(SALT, {customer_hash(SALT, "c-0")})
    for number in range(HASH_CACHE_SIZE + 10):
        ledger.is_erased(f"c-{number}")
    assert erasure._cached_hash.cache_info().currsize <= HASH_CACHE_SIZE
    assert ledger.is_erased("c-0") and not ledger.is_erased("c-1")  # "c-0" was evicted


def test_a_ledger_with_hashes_but_no_salt_is_refused() -> None:
    with pytest.raises(ErasureError, match="JOURNEYS_ERASURE_SALT is not set"):
        ErasureLedger(None, {"abc"}).usable()
    ErasureLedger(None).usable()  # nothing erased yet: nothing to recognise


@pytest.mark.parametrize("salt", [None, "", "short"])
def test_an_erasure_needs_a_long_enough_salt(salt: str | None) -> None:
    with pytest.raises(ErasureError, match="JOURNEYS_ERASURE_SALT"):
        check_salt(salt)


def test_customer_ids_are_checked_kept_exact_and_once() -> None:
    assert check_customer_ids(["c-1", " c-1", "c-1"]) == ["c-1", " c-1"]
    with pytest.raises(ErasureError, match=r"--customer #2 is ' '"):
        check_customer_ids(["c-1", " "])
    with pytest.raises(ErasureError, match="no --customer"):
        check_customer_ids([])


def test_the_ledger_row_keeps_the_hash_and_counts_not_the_id() -> None:
    outcome = ErasureOutcome("c-1", customer_hash(SALT, "c-1"), {"touchpoints": 3, "x": 0}, False)
    row = ledger_row(outcome, datetime(2026, 5, 1, tzinfo=UTC), "ticket", "r1", "cli")
    assert "c-1" not in str(row)
    assert row["removed"] == {"touchpoints": 3} and row["rows_removed"] == 3
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger_row(outcome, datetime(2026, 5, 1), "", "r1", "cli")  # noqa: DTZ001


def test_describe_says_why_nothing_was_removed() -> None:
    assert describe(ErasureOutcome("c", "h", {"t": 0}, True)).endswith(
        "(already erased; nothing of it was left)"
    )
    assert "no data held" in describe(ErasureOutcome("c", "h", {}, False))
    assert describe(ErasureOutcome("c", "h", {"t": 2}, False)) == "c: 2 rows removed (t 2)"


def test_a_request_and_its_reply_round_trip() -> None:
    request = ErasureRequest("r1", ("a", "b"), "why", "me")
    assert ErasureRequest.decode(request.encode()) == request
    outcomes = [ErasureOutcome(c, customer_hash(SALT, c), {"t": 1}, False) for c in "ab"]
    _, raw = encode_reply("r1", outcomes)
    assert decode_reply(request, raw) == outcomes
    with pytest.raises(ErasureError, match="not an erasure request"):
        ErasureRequest.decode(b"{}")
    with pytest.raises(ErasureError, match="did not erase: no salt"):
        decode_reply(request, b'{"error": "no salt"}')


def test_blocks_cover_each_day_once_per_span() -> None:
    blocks = blocks_of([date(2026, 3, 5)])
    assert len(blocks) == 7
    for span, first in blocks:
        assert first <= date(2026, 3, 5) and (date(2026, 3, 5) - first).days < span
        assert (first - date(1970, 1, 1)).days % span == 0


def test_dead_letters_match_the_quoted_id_only() -> None:
    _, params = dead_letter_match('c"1')
    assert params["quoted"] == '"c\\"1"'


def test_every_table_with_a_customer_id_is_erased() -> None:
    """A new table holding customer_id in a migration must join the erasure's plan."""
    tables = set()
    for migration in load_migrations():
        for name, body in re.findall(
            r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\) ENGINE", migration.sql, re.S
        ):
            if re.search(r"^\s*customer_id\b", body, re.M):
                tables.add(name)
    tables.discard("journeys_by_start")  # dropped by 0003
    assert tables == set(CUSTOMER_TABLES) | set(REFRESHED_CUSTOMER_TABLES)


def test_the_erasures_topic_tells_the_alert_delivery_who_was_erased() -> None:
    """Snapshots (in parts), hashes just added and the worker's replies all count; only a
    whole snapshot says that every earlier erasure is known; requests are not read."""
    erased = ErasedCustomers(SALT)
    many = {customer_hash(SALT, f"c-{n}") for n in range(HASHES_PER_MESSAGE + 1)}
    first, second = encode_erased(many, "snap-1")
    erased.read(*first)
    assert not erased.complete and len(erased.ledger) == HASHES_PER_MESSAGE
    erased.read(*second)
    assert erased.complete and erased.is_erased("c-0") and not erased.is_erased("c-x")
    (added,) = encode_erased({customer_hash(SALT, "c-x")}, None)
    erased.read(*added)
    erased.read(*encode_reply("r1", [ErasureOutcome("y", customer_hash(SALT, "y"), {}, False)]))
    erased.read(b"r2", ErasureRequest("r2", ("z",), "", "me").encode())
    assert erased.is_erased("c-x") and erased.is_erased("y") and not erased.is_erased("z")
    empty = ErasedCustomers(SALT)
    empty.read(*encode_erased(set(), "snap-2")[0])  # an empty ledger is a whole snapshot too
    assert empty.complete and not len(empty.ledger)
    with pytest.raises(ErasureError, match="unreadable"):
        empty.read(added[0], b"{}")
