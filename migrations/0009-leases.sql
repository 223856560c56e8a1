-- The hot data of a live worker, apart from its cold manifest data (SPEC §2.10, issue #12).
-- Every flush of heartbeat renewals, the restart's lease shift, the reaper's due scans and the
-- start-up load of the lease book touch only this narrow table (WITHOUT ROWID: the row is the
-- key), never the wide workers row with its state snapshot. A row exists exactly while its worker
-- is live; the triggers keep it so whatever statement changes a worker. A worker that ends takes
-- its final lease back into workers (store/workers.ts), where the cold record keeps it.
CREATE TABLE leases (
  worker_id         TEXT    PRIMARY KEY,
  status            TEXT    NOT NULL CHECK (status IN ('active', 'quarantined')),
  lease_token_hash  BLOB    NOT NULL,
  lease_expires_at  INTEGER NOT NULL,
  last_heartbeat_at INTEGER,
  expires_at        INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX leases_due ON leases (lease_expires_at);
CREATE INDEX leases_lifetime ON leases (expires_at) WHERE expires_at IS NOT NULL;

INSERT INTO leases (worker_id, status, lease_token_hash, lease_expires_at, last_heartbeat_at, expires_at)
SELECT worker_id, status, lease_token_hash, lease_expires_at, last_heartbeat_at, expires_at
FROM workers WHERE status IN ('active', 'quarantined');

CREATE TRIGGER leases_on_register AFTER INSERT ON workers WHEN NEW.status IN ('active', 'quarantined')
BEGIN
  INSERT INTO leases (worker_id, status, lease_token_hash, lease_expires_at, last_heartbeat_at, expires_at)
  VALUES (NEW.worker_id, NEW.status, NEW.lease_token_hash, NEW.lease_expires_at, NEW.last_heartbeat_at, NEW.expires_at);
END;
CREATE TRIGGER leases_on_status AFTER UPDATE OF status ON workers
BEGIN
  DELETE FROM leases WHERE worker_id = NEW.worker_id AND NEW.status NOT IN ('active', 'quarantined');
  UPDATE leases SET status = NEW.status WHERE worker_id = NEW.worker_id AND NEW.status IN ('active', 'quarantined');
END;
CREATE TRIGGER leases_on_token AFTER UPDATE OF lease_token_hash ON workers
BEGIN
  UPDATE leases SET lease_token_hash = NEW.lease_token_hash WHERE worker_id = NEW.worker_id;
END;

-- The live-lease indexes of workers are served by leases now; fewer index rows for every
-- termination (and the kill switch's hundred thousand) to rewrite.
DROP INDEX IF EXISTS workers_live_lease;
DROP INDEX IF EXISTS workers_live_expiry;
