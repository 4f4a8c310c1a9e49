-- The erasure ledger (issue 22): one row per customer erased by `journeys erase`, so that an
-- auditor can check that a customer was forgotten, when, why and how much was removed, without
-- the ledger itself keeping the customer id. `customer_hash` is HMAC-SHA256 of the id under
-- JOURNEYS_ERASURE_SALT (pipeline/store/erasure.py): whoever holds the salt and an id can find
-- its row; the table alone names nobody. The worker loads every hash at start and drops the
-- events of those customers when it reads history again (a replay, a re-score): deleting a
-- row here would let a replay bring the customer back, so rows are never deleted and the
-- table has no TTL. `removed` holds the rows removed per table at that erasure; an erasure of a
-- customer erased before adds a row with what was left (usually nothing).
CREATE TABLE IF NOT EXISTS erasures (
    customer_hash String,
    erased_at DateTime64(3, 'UTC'),
    reason String,
    request_id String,
    removed Map(String, UInt64),
    rows_removed UInt64,
    erased_by LowCardinality(String)
) ENGINE = MergeTree
ORDER BY (customer_hash, erased_at);
