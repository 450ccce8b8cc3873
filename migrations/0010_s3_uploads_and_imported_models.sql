-- Datasets copied to S3 for SageMaker jobs. One row per upload; the counters
-- are written every second or so while it runs, so the page survives a
-- restart and the upload resumes from what S3 already holds.
CREATE TABLE dataset_uploads (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset         TEXT    NOT NULL,           -- the local folder
    destination     TEXT    NOT NULL,           -- s3://bucket/prefix, no trailing slash
    status          TEXT    NOT NULL CHECK (status IN ('Preparing', 'Uploading', 'Completed', 'Failed', 'Cancelled')),
    files_total     INTEGER NOT NULL DEFAULT 0,
    files_uploaded  INTEGER NOT NULL DEFAULT 0,
    files_skipped   INTEGER NOT NULL DEFAULT 0,
    bytes_total     INTEGER NOT NULL DEFAULT 0,
    bytes_uploaded  INTEGER NOT NULL DEFAULT 0,
    bytes_skipped   INTEGER NOT NULL DEFAULT 0,
    message         TEXT,                       -- why it failed or stopped, or that it resumed
    created_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    finished_at     TEXT
);
CREATE INDEX dataset_uploads_by_dataset ON dataset_uploads (dataset, status);

-- Multipart uploads begun for large files: a restart continues each one
-- (ListParts says which parts S3 has) instead of sending the file again, and
-- a cancelled or failed upload aborts them so S3 keeps no orphaned parts.
CREATE TABLE dataset_upload_parts (
    upload_id       INTEGER NOT NULL REFERENCES dataset_uploads (id) ON DELETE CASCADE,
    key             TEXT    NOT NULL,           -- the object's key
    multipart_id    TEXT    NOT NULL,           -- S3's UploadId
    PRIMARY KEY (upload_id, key)
);

-- A local endpoint may now serve a SageMaker training job's model.tar.gz
-- (downloaded and unpacked under the data folder) as well as a local job's
-- artifact. Such an endpoint names its training job here and has job_id 0
-- (no local job). The table is not rebuilt to make job_id optional: scaling
-- policies reference it with ON DELETE CASCADE, and dropping it would delete them.
ALTER TABLE local_endpoints ADD COLUMN sagemaker_job TEXT;
