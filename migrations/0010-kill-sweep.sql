-- The kill switch at scale (SPEC §2.6, issue #12). Engaging it terminates every live worker in
-- its transaction; writing a hundred thousand wide workers rows (and their status index) there
-- took seconds. Now the transaction records the termination once, as a pending sweep: every
-- worker live at engagement has a seq up to `through_seq` (nothing registers while the switch is
-- engaged, and terminal is forever), so "live in workers and seq <= through_seq" is exactly the
-- set it killed. Readers see those workers killed at once through `worker_states`; the cold rows
-- are then brought up to date in slices, and the sweep row is deleted with the last one. A crash
-- in between loses nothing: the row survives, and the next start finishes the slices.
CREATE TABLE kill_sweep (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  through_seq INTEGER NOT NULL,
  at          INTEGER NOT NULL,
  reason      TEXT    NOT NULL
) STRICT;

-- Every worker as it stands: the stored row, with the pending sweep applied. Everything that reads
-- a worker's status, reason or end reads it here; `stored_status` is the column as written, for
-- filters that use the status index (a pending sweep's rows are still 'active' or 'quarantined' there).
CREATE VIEW worker_states AS
SELECT w.seq, w.worker_id, w.parent_id, w.depth, w.status AS stored_status,
  CASE WHEN w.seq <= (SELECT through_seq FROM kill_sweep) AND w.status IN ('active', 'quarantined') THEN 'killed' ELSE w.status END AS status,
  CASE WHEN w.seq <= (SELECT through_seq FROM kill_sweep) AND w.status IN ('active', 'quarantined') THEN (SELECT reason FROM kill_sweep) ELSE w.reason END AS reason,
  w.lease_token_hash, w.resources, w.state_snapshot, w.key_id, w.issued_at, w.registered_at, w.last_heartbeat_at,
  w.lease_expires_at, w.expires_at, w.last_spawn_at,
  CASE WHEN w.seq <= (SELECT through_seq FROM kill_sweep) AND w.status IN ('active', 'quarantined') THEN (SELECT at FROM kill_sweep) ELSE w.ended_at END AS ended_at
FROM workers w;

-- The lease row goes when a worker ends and follows it between live states: two triggers whose
-- WHEN picks the one to run, so a termination (and each row of a sweep) runs one statement, not two.
DROP TRIGGER leases_on_status;
CREATE TRIGGER leases_on_end AFTER UPDATE OF status ON workers WHEN NEW.status NOT IN ('active', 'quarantined')
BEGIN
  DELETE FROM leases WHERE worker_id = NEW.worker_id;
END;
CREATE TRIGGER leases_on_live_status AFTER UPDATE OF status ON workers WHEN NEW.status IN ('active', 'quarantined')
BEGIN
  UPDATE leases SET status = NEW.status WHERE worker_id = NEW.worker_id;
END;
