-- Warden schema v1. Timestamps are integer milliseconds since the epoch.

CREATE TABLE contracts (
  version    INTEGER PRIMARY KEY,
  body       TEXT    NOT NULL,          -- the contract input as JSON
  updated_at INTEGER NOT NULL,
  actor      TEXT    NOT NULL
) STRICT;

-- Every manifest ever issued. An outstanding one holds a quota slot until it registers or its TTL ends.
CREATE TABLE manifests (
  worker_id  TEXT    PRIMARY KEY,
  parent_id  TEXT,
  depth      INTEGER NOT NULL,
  body       TEXT    NOT NULL,          -- the signed manifest as issued
  issued_at  INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  status     TEXT    NOT NULL CHECK (status IN ('outstanding', 'registered', 'expired', 'rejected', 'voided'))
) STRICT;
CREATE INDEX manifests_outstanding ON manifests (expires_at) WHERE status = 'outstanding';
CREATE INDEX manifests_outstanding_parent ON manifests (parent_id) WHERE status = 'outstanding';

CREATE TABLE workers (
  seq               INTEGER PRIMARY KEY,  -- registration order; the list cursor
  worker_id         TEXT    NOT NULL UNIQUE,
  parent_id         TEXT,
  depth             INTEGER NOT NULL,
  status            TEXT    NOT NULL CHECK (status IN ('active', 'quarantined', 'deregistered', 'killed', 'reaped', 'expired')),
  reason            TEXT,
  lease_token_hash  BLOB    NOT NULL,
  resources         TEXT    NOT NULL,
  state_snapshot    TEXT    NOT NULL,
  key_id            TEXT    NOT NULL,
  issued_at         INTEGER NOT NULL,
  registered_at     INTEGER NOT NULL,
  last_heartbeat_at INTEGER,
  lease_expires_at  INTEGER NOT NULL,
  expires_at        INTEGER,              -- end of lifetime; NULL when unlimited
  last_spawn_at     INTEGER,              -- last approved spawn, for the cooldown
  ended_at          INTEGER
) STRICT;
CREATE INDEX workers_live_lease ON workers (lease_expires_at) WHERE status IN ('active', 'quarantined');
CREATE INDEX workers_live_expiry ON workers (expires_at) WHERE status IN ('active', 'quarantined') AND expires_at IS NOT NULL;
CREATE INDEX workers_parent ON workers (parent_id);
CREATE INDEX workers_status ON workers (status, seq);

-- The durable sandbox record of each worker, from launch to stop.
CREATE TABLE sandboxes (
  worker_id   TEXT    PRIMARY KEY,
  driver      TEXT    NOT NULL,
  resources   TEXT    NOT NULL,
  status      TEXT    NOT NULL CHECK (status IN ('running', 'stopped')),
  launched_at INTEGER NOT NULL,
  stopped_at  INTEGER,
  stop_reason TEXT
) STRICT;
CREATE INDEX sandboxes_running ON sandboxes (worker_id) WHERE status = 'running';

CREATE TABLE audit (
  seq       INTEGER PRIMARY KEY,
  at        TEXT    NOT NULL,
  type      TEXT    NOT NULL,
  actor     TEXT    NOT NULL,
  worker_id TEXT,
  parent_id TEXT,
  code      TEXT,
  data      TEXT    NOT NULL,
  prev_hash TEXT    NOT NULL,
  hash      TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_worker ON audit (worker_id, seq) WHERE worker_id IS NOT NULL;
CREATE INDEX audit_type ON audit (type, seq);
CREATE INDEX audit_parent ON audit (parent_id, seq) WHERE parent_id IS NOT NULL;

-- Singleton rows.
CREATE TABLE kill_switch (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  engaged    INTEGER NOT NULL CHECK (engaged IN (0, 1)),
  engaged_at INTEGER,
  reason     TEXT
) STRICT;
INSERT INTO kill_switch (id, engaged) VALUES (1, 0);

CREATE TABLE controller_state (
  id           INTEGER PRIMARY KEY CHECK (id = 1),
  last_tick_at INTEGER                   -- last reaper tick; leases are frozen from here while the controller is down
) STRICT;
INSERT INTO controller_state (id, last_tick_at) VALUES (1, NULL);
