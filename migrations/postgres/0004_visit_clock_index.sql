-- The visit clock finds planned visits whose window has opened without
-- scanning every planned visit of the horizon; this index replaces
-- visits_open, whose status prefix it also serves.
CREATE INDEX visits_status_start ON visits (status, window_start);
DROP INDEX visits_open;
