-- Nurses' languages and skills, shifts, care plans, pauses, visits,
-- the visit timeline, alerts raised by the schedule, calendar feed tokens.

CREATE TABLE nurse_profiles (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    languages TEXT NOT NULL,
    skills TEXT NOT NULL DEFAULT ''
);

CREATE TABLE shifts (
    id TEXT PRIMARY KEY NOT NULL,
    nurse_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    signed_off_at BIGINT,
    created_at BIGINT NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX shifts_time ON shifts (starts_at, ends_at);
CREATE INDEX shifts_nurse ON shifts (nurse_id, starts_at);

CREATE TABLE visit_rules (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    dtstart TEXT NOT NULL,
    rrule TEXT,
    exdates TEXT NOT NULL DEFAULT '[]',
    rdates TEXT NOT NULL DEFAULT '[]',
    window_before_min INTEGER NOT NULL,
    window_after_min INTEGER NOT NULL,
    length_min INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    skill TEXT,
    language TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX visit_rules_client ON visit_rules (client_id);

CREATE TABLE client_pauses (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX client_pauses_client ON client_pauses (client_id);

CREATE TABLE visits (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    rule_id TEXT REFERENCES visit_rules(id) ON DELETE SET NULL,
    occurrence TEXT NOT NULL,
    local_date TEXT NOT NULL,
    planned_at BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    window_end BIGINT NOT NULL,
    length_min INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    skill TEXT,
    language TEXT NOT NULL,
    nurse_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    pinned BOOLEAN NOT NULL DEFAULT FALSE,
    scheduled_start BIGINT,
    status TEXT NOT NULL,
    status_since BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    started_at BIGINT,
    ended_at BIGINT,
    outcome TEXT,
    note TEXT,
    updated_at BIGINT NOT NULL,
    UNIQUE (rule_id, occurrence)
);
CREATE INDEX visits_nurse_time ON visits (nurse_id, window_start);
CREATE INDEX visits_window ON visits (window_start);
CREATE INDEX visits_client_time ON visits (client_id, window_start);
CREATE INDEX visits_open ON visits (status, window_end);

CREATE TABLE visit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    visit_id TEXT NOT NULL REFERENCES visits(id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    actor TEXT,
    from_status TEXT,
    to_status TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX visit_events_visit ON visit_events (visit_id, at);

CREATE TABLE alerts (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    priority TEXT NOT NULL,
    status TEXT NOT NULL,
    client_id TEXT REFERENCES clients(id) ON DELETE SET NULL,
    visit_id TEXT REFERENCES visits(id) ON DELETE SET NULL,
    device_id TEXT REFERENCES devices(id) ON DELETE SET NULL,
    source_key TEXT NOT NULL UNIQUE,
    raised_at BIGINT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alerts_raised ON alerts (raised_at);

CREATE TABLE calendar_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);
