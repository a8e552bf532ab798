-- Who took part in each call, and when they joined and left.

CREATE TABLE call_participants (
    call_id TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    participant TEXT NOT NULL,
    role TEXT NOT NULL,
    display_name TEXT NOT NULL,
    joined_at BIGINT NOT NULL,
    left_at BIGINT,
    PRIMARY KEY (call_id, participant, joined_at)
);
