-- The change journal: one row per attempted mutation, on AWS or local, kept
-- whether it succeeded or not, so an operator can always answer "who changed
-- what, from what, to what, and did it work".
CREATE TABLE change_journal (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT    NOT NULL,               -- RFC 3339, UTC, milliseconds
    actor    TEXT    NOT NULL,               -- who asked (a user name once sign-in exists)
    backend  TEXT    NOT NULL CHECK (backend IN ('aws', 'local')),
    action   TEXT    NOT NULL,               -- e.g. 'notebook.stop'
    target   TEXT    NOT NULL,               -- the resource's name or ARN
    before   TEXT,                           -- state before, as the user sees it
    after    TEXT,                           -- state after
    outcome  TEXT    NOT NULL CHECK (outcome IN ('ok', 'failed')),
    message  TEXT                            -- the error in words when it failed
);

CREATE INDEX change_journal_at ON change_journal (at DESC);
