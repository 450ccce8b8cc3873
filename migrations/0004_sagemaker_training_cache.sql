-- What the poller last read of SageMaker training jobs. Pages answer from
-- here, so the number of AWS calls does not grow with open tabs, and the list
-- still shows (with its age) when AWS is slow or throttling.
CREATE TABLE sagemaker_training_jobs (
    name          TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    created_at    TEXT,
    summary       TEXT NOT NULL,      -- JSON SageMakerJobSummary
    detail        TEXT,               -- JSON SageMakerJobDetail, from DescribeTrainingJob
    refreshed_at  TEXT NOT NULL
);

CREATE INDEX sagemaker_training_jobs_created ON sagemaker_training_jobs (created_at DESC);
