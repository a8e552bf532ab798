-- Calls to the homes on record: who called whom for what, when it was
-- answered and how it ended.
CREATE TABLE calls (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    client_id TEXT REFERENCES clients(id) ON DELETE SET NULL,
    visit_id TEXT REFERENCES visits(id) ON DELETE SET NULL,
    alert_id TEXT REFERENCES alerts(id) ON DELETE SET NULL,
    device_id TEXT REFERENCES devices(id) ON DELETE SET NULL,
    caller_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    auto_answer BOOLEAN NOT NULL,
    state TEXT NOT NULL,
    offered_at BIGINT NOT NULL,
    answered_at BIGINT,
    ended_at BIGINT,
    end_reason TEXT
);
CREATE INDEX calls_visit ON calls (visit_id);
CREATE INDEX calls_alert ON calls (alert_id);
