-- Dead letters name the payload they were made of: its size in bytes and its sha256, as
-- received (issue 15). A message near the broker's size limit does not fit the dead-letter
-- topic once its reason is added in headers, so the topic's copy is cut to fit and carries
-- the same two values; `raw` here keeps the whole payload. Rows written before this
-- migration have 0 and ''.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS raw_size UInt64 DEFAULT 0 AFTER raw;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS raw_sha256 String DEFAULT '' AFTER raw_size;
