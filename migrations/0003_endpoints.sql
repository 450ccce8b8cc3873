-- Local endpoints: a completed local training artifact served in-process.
-- They are started again from this table when the console restarts.
CREATE TABLE local_endpoints (
    name            TEXT    PRIMARY KEY,
    job_id          INTEGER NOT NULL,
    artifact_dir    TEXT    NOT NULL,
    instances       INTEGER NOT NULL CHECK (instances >= 1),
    max_batch       INTEGER NOT NULL CHECK (max_batch >= 1),
    max_wait_ms     INTEGER NOT NULL CHECK (max_wait_ms >= 0),
    queue_capacity  INTEGER NOT NULL CHECK (queue_capacity >= 1),
    status          TEXT    NOT NULL CHECK (status IN ('InService', 'Failed')),
    message         TEXT,                           -- why it failed to start
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);

-- Per-endpoint, per-minute metrics named as SageMaker names them in
-- CloudWatch. Latencies in microseconds, as CloudWatch reports them; sums
-- and maxima so averages and maxima can be read back per minute or per hour.
CREATE TABLE endpoint_metrics (
    endpoint                TEXT    NOT NULL,
    minute                  INTEGER NOT NULL,       -- unix time / 60
    instances               INTEGER NOT NULL,
    invocations             INTEGER NOT NULL DEFAULT 0,
    invocation_4xx          INTEGER NOT NULL DEFAULT 0,
    invocation_5xx          INTEGER NOT NULL DEFAULT 0,
    model_latency_us_sum    INTEGER NOT NULL DEFAULT 0,
    model_latency_us_max    INTEGER NOT NULL DEFAULT 0,
    overhead_latency_us_sum INTEGER NOT NULL DEFAULT 0,
    overhead_latency_us_max INTEGER NOT NULL DEFAULT 0,
    batches                 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint, minute)
);
