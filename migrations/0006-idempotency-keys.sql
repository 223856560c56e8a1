-- Idempotency keys (SPEC §3 Retries): the first answer to a keyed request, per caller, kept for
-- 24 h. Written in the same transaction as the decision it answers, so a crash never leaves a
-- decision without its key or a key without its decision. Lease tokens are never stored here.
CREATE TABLE idempotency_keys (
  caller      TEXT    NOT NULL,          -- 'operator', 'worker:<id>', or 'manifest:<id>' for registration
  key         TEXT    NOT NULL,          -- the Idempotency-Key header, 1–128 visible ASCII characters
  body_digest BLOB    NOT NULL,          -- SHA-256 of the operation and the canonical JSON of its body
  status      INTEGER NOT NULL,          -- the HTTP status first answered
  answer      TEXT    NOT NULL,          -- the first answer as JSON (a registration's without its token)
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (caller, key)
) STRICT;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
