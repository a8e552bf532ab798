CREATE TABLE devices (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    client_id TEXT REFERENCES clients(id),
    cert_fingerprint TEXT NOT NULL,
    cert_not_after BIGINT NOT NULL,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL,
    last_seen BIGINT,
    last_address TEXT,
    agent_version TEXT,
    protocol_version INTEGER,
    settings_json TEXT NOT NULL,
    settings_version BIGINT NOT NULL DEFAULT 0,
    applied_version BIGINT NOT NULL DEFAULT 0,
    config_error TEXT
);
CREATE INDEX devices_revoked ON devices (revoked_at);

CREATE TABLE device_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL REFERENCES devices(id),
    event_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    detail TEXT NOT NULL,
    UNIQUE (device_id, event_key)
);
