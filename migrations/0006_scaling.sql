-- Auto-scaling of local endpoints, and reverting changes from the journal.

-- A revert is a change of its own that names the change it undid; the undone
-- change points at its revert, so it is not reverted twice.
ALTER TABLE change_journal ADD COLUMN revert_of INTEGER REFERENCES change_journal (id);
ALTER TABLE change_journal ADD COLUMN reverted_by INTEGER REFERENCES change_journal (id);

-- The target-tracking policy of a local endpoint, as the JSON of
-- app::scaling::ScalingPolicy (the same document the journal keeps, so a
-- revert puts back exactly what was there). Gone with its endpoint.
CREATE TABLE local_scaling_policies (
    endpoint    TEXT PRIMARY KEY REFERENCES local_endpoints (name) ON DELETE CASCADE,
    policy      TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- What local auto-scaling did, as Application Auto Scaling's activities.
CREATE TABLE local_scaling_activities (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint        TEXT    NOT NULL,
    at              TEXT    NOT NULL,
    from_instances  INTEGER NOT NULL,
    to_instances    INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('Successful', 'Failed')),
    cause           TEXT    NOT NULL
);

CREATE INDEX local_scaling_activities_endpoint ON local_scaling_activities (endpoint, id DESC);
