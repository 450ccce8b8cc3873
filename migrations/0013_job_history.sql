-- The job lists page on the server (keyset paging on creation time), so
-- each list has an index in that order, and one per status filter. The
-- first also holds the status and the name: a name search scans it, not the
-- table's rows (which carry the spec's JSON), five times faster.
CREATE INDEX local_jobs_created ON local_jobs (created_at, id, status, name);
CREATE INDEX local_jobs_status_created ON local_jobs (status, created_at, id);

-- SageMaker creation times come from the SDK with as many fraction digits as
-- they have; kept with milliseconds, like every other time here, they sort
-- as text against local jobs'.
UPDATE sagemaker_training_jobs SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at) WHERE created_at IS NOT NULL;
DROP INDEX sagemaker_training_jobs_created;
CREATE INDEX sagemaker_training_jobs_created ON sagemaker_training_jobs (created_at, name, status);
CREATE INDEX sagemaker_training_jobs_status_created ON sagemaker_training_jobs (status, created_at, name);
UPDATE sagemaker_tuning_jobs SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at) WHERE created_at IS NOT NULL;
CREATE INDEX sagemaker_tuning_jobs_created ON sagemaker_tuning_jobs (created_at, name);

-- How far the poller has read the account's training job history: new jobs
-- are listed from the newest creation time seen (the watermark), older ones
-- a page at a time backwards from the oldest seen (the backfill), so a
-- restart resumes where it stopped instead of listing everything again.
CREATE TABLE sagemaker_history (
    kind            TEXT    PRIMARY KEY CHECK (kind IN ('training')),
    newest_created  TEXT,                       -- the watermark
    oldest_created  TEXT,                       -- the backfill has read everything created since
    backfill_done   INTEGER NOT NULL DEFAULT 0,
    pages_read      INTEGER NOT NULL DEFAULT 0,
    updated_at      TEXT    NOT NULL
);
