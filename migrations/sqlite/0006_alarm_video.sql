-- What a client allows the staff handling one of their alarms to do with the
-- camera: 'never', 'ring' (the client accepts) or 'open_at_once'.
ALTER TABLE clients ADD COLUMN alarm_video TEXT NOT NULL DEFAULT 'ring';
