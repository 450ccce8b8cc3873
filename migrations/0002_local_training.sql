-- Local ("EC2") training jobs run by the embedded libtorch worker. The spec
-- is kept as JSON so a job can be re-run or resumed exactly as asked; the
-- progress columns are what the job page shows while the job runs.
CREATE TABLE local_jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL,
    spec            TEXT    NOT NULL,               -- JSON LocalJobSpec
    status          TEXT    NOT NULL CHECK (status IN ('Queued', 'Running', 'Completed', 'Failed', 'Cancelled', 'Interrupted')),
    created_at      TEXT    NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    work_dir        TEXT    NOT NULL,               -- checkpoints/ and artifact/ live here
    epoch           INTEGER NOT NULL DEFAULT 0,
    step            INTEGER NOT NULL DEFAULT 0,
    steps_per_epoch INTEGER NOT NULL DEFAULT 0,
    phase           TEXT    NOT NULL DEFAULT '',
    images_per_s    REAL,
    eta_seconds     REAL,
    device          TEXT,
    dataset_report  TEXT,                           -- JSON DatasetReport from the check before training
    test_loss       REAL,
    test_accuracy   REAL,
    message         TEXT,                           -- the error, cancellation or interruption reason
    attempts        INTEGER NOT NULL DEFAULT 0,     -- runs started; a resume after a crash is another attempt
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    source          TEXT    NOT NULL DEFAULT 'console' CHECK (source IN ('console', 'cli'))
);

CREATE INDEX local_jobs_status ON local_jobs (status, id);

-- One row per finished epoch. A resumed job rewrites the epochs after its
-- checkpoint, hence the primary key and INSERT OR REPLACE.
CREATE TABLE local_job_epochs (
    job_id          INTEGER NOT NULL REFERENCES local_jobs (id) ON DELETE CASCADE,
    epoch           INTEGER NOT NULL,
    train_loss      REAL    NOT NULL,
    train_accuracy  REAL    NOT NULL,
    valid_loss      REAL    NOT NULL,
    valid_accuracy  REAL    NOT NULL,
    seconds         REAL    NOT NULL,
    images_per_s    REAL    NOT NULL,
    PRIMARY KEY (job_id, epoch)
);

-- The training loss of every optimisation step, for the per-step chart.
CREATE TABLE local_job_steps (
    job_id  INTEGER NOT NULL REFERENCES local_jobs (id) ON DELETE CASCADE,
    step    INTEGER NOT NULL,
    epoch   INTEGER NOT NULL,
    loss    REAL    NOT NULL,
    PRIMARY KEY (job_id, step)
);

CREATE TABLE local_job_logs (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id  INTEGER NOT NULL REFERENCES local_jobs (id) ON DELETE CASCADE,
    at      TEXT    NOT NULL,
    line    TEXT    NOT NULL
);

CREATE INDEX local_job_logs_job ON local_job_logs (job_id, id);
