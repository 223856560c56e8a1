-- A sandbox stops exactly when its worker ends, so its stop time and reason are the worker's
-- (ended_at, reason): no second row to rewrite per termination (the kill switch rewrote 100,000).
DROP INDEX sandboxes_running;
ALTER TABLE sandboxes DROP COLUMN status;
ALTER TABLE sandboxes DROP COLUMN stopped_at;
ALTER TABLE sandboxes DROP COLUMN stop_reason;
