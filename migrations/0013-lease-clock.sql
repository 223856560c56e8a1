-- Lease time does not run while the controller is down (SPEC §2.7). Every start used to shift
-- every live lease by the downtime: a rewrite of the whole leases table and its due index, the
-- largest part of a start at a hundred thousand live workers. Now a lease is kept on the
-- controller's clock, wall-clock time less every downtime so far (`lease_offset`), so a start
-- moves that clock once (one row) and raises only the leases below the floor (a range of the due
-- index). Readers add the offset back (store/workers.ts); the offset starts at 0, so the leases
-- stored until now keep their meaning.
ALTER TABLE controller_state ADD COLUMN lease_offset INTEGER NOT NULL DEFAULT 0;

DROP TRIGGER leases_on_register;
CREATE TRIGGER leases_on_register AFTER INSERT ON workers WHEN NEW.status IN ('active', 'quarantined')
BEGIN
  INSERT INTO leases (worker_id, status, lease_token_hash, lease_expires_at, last_heartbeat_at, expires_at)
  VALUES (NEW.worker_id, NEW.status, NEW.lease_token_hash,
    NEW.lease_expires_at - (SELECT lease_offset FROM controller_state WHERE id = 1), NEW.last_heartbeat_at, NEW.expires_at);
END;
