-- The model versions a local endpoint has served, and the rollouts that
-- moved traffic between them. `local_endpoints` keeps what serves now (a
-- restart loads that); a version row is what it served or was offered.
CREATE TABLE endpoint_versions (
    endpoint        TEXT    NOT NULL,
    version         INTEGER NOT NULL CHECK (version >= 1),
    job_id          INTEGER NOT NULL,               -- 0 when sagemaker_job is set
    sagemaker_job   TEXT,
    artifact_dir    TEXT    NOT NULL,
    instances       INTEGER NOT NULL CHECK (instances >= 1),
    max_batch       INTEGER NOT NULL CHECK (max_batch >= 1),
    max_wait_ms     INTEGER NOT NULL CHECK (max_wait_ms >= 0),
    queue_capacity  INTEGER NOT NULL CHECK (queue_capacity >= 1),
    created_at      TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    live_from       TEXT,                           -- NULL: never served all traffic
    live_until      TEXT,
    PRIMARY KEY (endpoint, version)
);

-- Every endpoint deployed before versions existed is its own version 1.
INSERT INTO endpoint_versions (endpoint, version, job_id, sagemaker_job, artifact_dir, instances, max_batch, max_wait_ms,
                               queue_capacity, created_at, created_by, live_from)
SELECT name, 1, job_id, sagemaker_job, artifact_dir, instances, max_batch, max_wait_ms, queue_capacity, created_at, 'system', created_at
FROM local_endpoints;

ALTER TABLE local_endpoints ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- A rollout is 'running' only while this process drives it: a restart
-- finds a running one and marks it 'interrupted' (the live version, as
-- `local_endpoints` says, is what serves).
CREATE TABLE endpoint_rollouts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint        TEXT    NOT NULL,
    from_version    INTEGER NOT NULL,
    to_version      INTEGER NOT NULL,
    spec            TEXT    NOT NULL,               -- JSON RolloutSpec
    state           TEXT    NOT NULL CHECK (state IN ('running', 'completed', 'rolled_back', 'interrupted')),
    step            INTEGER NOT NULL DEFAULT 0,
    percent         INTEGER NOT NULL DEFAULT 0,
    outcome         TEXT,
    counts          TEXT,                           -- JSON [live, candidate] VersionStats over the rollout
    started_by      TEXT    NOT NULL,
    started_at      TEXT    NOT NULL,
    ended_at        TEXT
);

CREATE INDEX endpoint_rollouts_endpoint ON endpoint_rollouts (endpoint, id);
