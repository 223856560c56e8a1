-- Managed workers (SPEC §5). A worker may end `exited` (its sandbox ended while it was live):
-- SQLite cannot alter a CHECK constraint, so the workers table is rebuilt with the new status.
CREATE TABLE workers_new (
  seq               INTEGER PRIMARY KEY,
  worker_id         TEXT    NOT NULL UNIQUE,
  parent_id         TEXT,
  depth             INTEGER NOT NULL,
  status            TEXT    NOT NULL CHECK (status IN ('active', 'quarantined', 'deregistered', 'killed', 'reaped', 'expired', 'exited')),
  reason            TEXT,
  lease_token_hash  BLOB    NOT NULL,
  resources         TEXT    NOT NULL,
  state_snapshot    TEXT    NOT NULL,
  key_id            TEXT    NOT NULL,
  issued_at         INTEGER NOT NULL,
  registered_at     INTEGER NOT NULL,
  last_heartbeat_at INTEGER,
  lease_expires_at  INTEGER NOT NULL,
  expires_at        INTEGER,
  last_spawn_at     INTEGER,
  ended_at          INTEGER
) STRICT;
INSERT INTO workers_new (seq, worker_id, parent_id, depth, status, reason, lease_token_hash, resources, state_snapshot,
  key_id, issued_at, registered_at, last_heartbeat_at, lease_expires_at, expires_at, last_spawn_at, ended_at)
SELECT seq, worker_id, parent_id, depth, status, reason, lease_token_hash, resources, state_snapshot,
  key_id, issued_at, registered_at, last_heartbeat_at, lease_expires_at, expires_at, last_spawn_at, ended_at
FROM workers;
DROP TABLE workers;
ALTER TABLE workers_new RENAME TO workers;
CREATE INDEX workers_live_lease ON workers (lease_expires_at) WHERE status IN ('active', 'quarantined');
CREATE INDEX workers_live_expiry ON workers (expires_at) WHERE status IN ('active', 'quarantined') AND expires_at IS NOT NULL;
CREATE INDEX workers_parent ON workers (parent_id);
CREATE INDEX workers_status ON workers (status, seq);

-- The sandbox record becomes the real one for a managed worker: what it runs and how its
-- processes fared. External workers keep a row with managed = 0 and no state.
ALTER TABLE sandboxes ADD COLUMN managed INTEGER NOT NULL DEFAULT 0 CHECK (managed IN (0, 1));
ALTER TABLE sandboxes ADD COLUMN program TEXT;   -- JSON {command, env}: the root's program
ALTER TABLE sandboxes ADD COLUMN state TEXT CHECK (state IN ('starting', 'running', 'frozen', 'ended'));
ALTER TABLE sandboxes ADD COLUMN pid INTEGER;
ALTER TABLE sandboxes ADD COLUMN started_at INTEGER;
ALTER TABLE sandboxes ADD COLUMN ended_at INTEGER;
ALTER TABLE sandboxes ADD COLUMN exit_code INTEGER;
ALTER TABLE sandboxes ADD COLUMN signal TEXT;
CREATE INDEX sandboxes_managed_open ON sandboxes (worker_id) WHERE managed = 1 AND state IS NOT 'ended';
