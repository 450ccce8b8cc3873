-- What the poller last read of hyperparameter tuning jobs (see 0004).
CREATE TABLE sagemaker_tuning_jobs (
    name          TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    created_at    TEXT,
    summary       TEXT NOT NULL,      -- JSON TuningJobSummary
    detail        TEXT,               -- JSON TuningJobDetail
    refreshed_at  TEXT NOT NULL
);
