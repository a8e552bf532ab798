-- Alarms and night patrol: supervision classes and home details of clients,
-- rosters and escalation of teams, the alert lifecycle with its timeline,
-- notices to people outside the hub, and the supervisor role.

ALTER TABLE clients ADD COLUMN supervision_class TEXT NOT NULL DEFAULT '25h';
ALTER TABLE clients ADD COLUMN high_risk BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN door_instructions TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN care_notes TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN relative_name TEXT;
ALTER TABLE clients ADD COLUMN relative_contact TEXT;

ALTER TABLE teams ADD COLUMN escalates_to TEXT REFERENCES teams(id) ON DELETE SET NULL;

CREATE TABLE team_duty (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX team_duty_ends ON team_duty (ends_at);

ALTER TABLE alerts ADD COLUMN team_id TEXT REFERENCES teams(id) ON DELETE SET NULL;
ALTER TABLE alerts ADD COLUMN escalated_team_id TEXT REFERENCES teams(id) ON DELETE SET NULL;
ALTER TABLE alerts ADD COLUMN level INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN escalate_at BIGINT;
ALTER TABLE alerts ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE alerts ADD COLUMN last_raised_at BIGINT;
ALTER TABLE alerts ADD COLUMN routed_at BIGINT;
ALTER TABLE alerts ADD COLUMN answered_at BIGINT;
ALTER TABLE alerts ADD COLUMN answered_by TEXT REFERENCES users(id) ON DELETE SET NULL;
ALTER TABLE alerts ADD COLUMN contact TEXT;
ALTER TABLE alerts ADD COLUMN acknowledged_at BIGINT;
ALTER TABLE alerts ADD COLUMN claimed_by TEXT REFERENCES users(id) ON DELETE SET NULL;
ALTER TABLE alerts ADD COLUMN dispatched_at BIGINT;
ALTER TABLE alerts ADD COLUMN en_route_at BIGINT;
ALTER TABLE alerts ADD COLUMN on_site_at BIGINT;
ALTER TABLE alerts ADD COLUMN closed_at BIGINT;
ALTER TABLE alerts ADD COLUMN outcome TEXT;
ALTER TABLE alerts ADD COLUMN note TEXT;
ALTER TABLE alerts ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE alerts SET last_raised_at = raised_at, updated_at = raised_at;
-- Alerts raised before the alarm engine are routed by its timer at once.
UPDATE alerts SET escalate_at = raised_at WHERE status = 'raised';
CREATE INDEX alerts_escalate ON alerts (escalate_at);
CREATE INDEX alerts_status ON alerts (status);
CREATE INDEX alerts_device_open ON alerts (device_id, kind, closed_at);

ALTER TABLE device_events ADD COLUMN alert_id TEXT;
CREATE INDEX device_events_alert ON device_events (alert_id);

CREATE TABLE alert_events (
    id BIGSERIAL PRIMARY KEY,
    alert_id TEXT NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    actor TEXT,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, id);

CREATE TABLE notices (
    id TEXT PRIMARY KEY NOT NULL,
    alert_id TEXT REFERENCES alerts(id) ON DELETE SET NULL,
    recipient TEXT NOT NULL,
    address TEXT,
    language TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    error TEXT
);
CREATE INDEX notices_unsent ON notices (sent_at, created_at);

ALTER TABLE user_roles DROP CONSTRAINT IF EXISTS user_roles_role_check;
ALTER TABLE user_roles ADD CONSTRAINT user_roles_role_check
    CHECK (role IN ('admin', 'nurse', 'patrol', 'supervisor'));
