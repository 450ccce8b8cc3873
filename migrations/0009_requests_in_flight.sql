-- Changes being made right now. The auth guard writes a row before it runs a
-- state-changing request and deletes it once the handler has answered (by
-- then the handler has journaled the change). A journal entry is written just
-- after the change it describes, so a process killed in between would leave
-- the change unrecorded; the row left here is what records it: at start-up
-- each one becomes a "request.interrupted" journal entry naming who asked for
-- what, and when.
CREATE TABLE requests_in_flight (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,              -- RFC 3339, UTC, milliseconds
    actor       TEXT NOT NULL,
    route       TEXT NOT NULL,              -- e.g. 'POST /api/endpoints/local/deploy'
    request     TEXT                        -- the body's first 4 KB, as sent
);
