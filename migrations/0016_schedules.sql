-- Schedules the server runs on time: stop or start a notebook, delete an
-- idle endpoint, set an endpoint's auto-scaling minimum. `next_run_at` is
-- the next due time in UTC (NULL once a one-off has run); a restart finds
-- every schedule whose time passed while it was down and runs it once.
CREATE TABLE schedules (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    resource        TEXT    NOT NULL,               -- notebook/NAME, sagemaker/NAME, local/NAME
    action          TEXT    NOT NULL,               -- JSON ScheduleAction
    recurrence      TEXT    NOT NULL,               -- the `when` text as written: "weekdays 19:00"
    time_zone       TEXT    NOT NULL,               -- IANA name
    next_run_at     TEXT,
    last_run_at     TEXT,
    last_outcome    TEXT,
    created_at      TEXT    NOT NULL,
    created_by      TEXT    NOT NULL
);

CREATE INDEX schedules_next ON schedules (next_run_at, id);
CREATE INDEX schedules_resource ON schedules (resource, id);
