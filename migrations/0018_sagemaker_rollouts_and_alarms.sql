-- SageMaker rollouts Sagedeck started with UpdateEndpoint: SageMaker shifts
-- the traffic; this row says from which configuration to which, with what
-- plan, and how it ended as DescribeEndpoint told it.
CREATE TABLE sagemaker_rollouts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint        TEXT    NOT NULL,
    from_config     TEXT    NOT NULL,
    to_config       TEXT    NOT NULL,
    model           TEXT,                           -- NULL: the live model kept
    source          TEXT    NOT NULL,               -- in words: "SageMaker job dogs-v2"
    instances       TEXT    NOT NULL,               -- "2 × ml.m5.large"
    deployment      TEXT    NOT NULL,               -- JSON DeploymentPlan, as sent
    state           TEXT    NOT NULL CHECK (state IN ('updating', 'completed', 'rolled_back', 'failed')),
    outcome         TEXT,
    started_by      TEXT    NOT NULL,
    started_at      TEXT    NOT NULL,
    ended_at        TEXT
);

CREATE INDEX sagemaker_rollouts_endpoint ON sagemaker_rollouts (endpoint, id);

-- Alarms on local endpoints, evaluated by Sagedeck on its own per-minute
-- metrics with CloudWatch's semantics (period, M of N datapoints, threshold).
CREATE TABLE local_alarms (
    endpoint        TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('ErrorRate', 'LatencyP99')),
    spec            TEXT    NOT NULL,               -- JSON AlarmSpec
    created_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    PRIMARY KEY (endpoint, kind)
);
