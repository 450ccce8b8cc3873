-- The account's SageMaker endpoints as the poller last read them, so the
-- endpoint list pages from SQLite (with the local endpoints) and a page view
-- makes no AWS call. ListEndpoints gives name, status and times; the
-- instance figures and the model come from DescribeEndpoint(+Config), read
-- when an endpoint is new, changed (LastModifiedTime) or changing.
CREATE TABLE sagemaker_endpoints (
    name            TEXT    PRIMARY KEY,
    status          TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,               -- milliseconds, sorts with local_endpoints.created_at
    last_modified   TEXT,
    instances       INTEGER NOT NULL DEFAULT 0,
    instance_type   TEXT    NOT NULL DEFAULT '',
    model           TEXT    NOT NULL DEFAULT '',
    described       INTEGER NOT NULL DEFAULT 0,     -- the instance figures and model are DescribeEndpoint's
    listed_round    INTEGER NOT NULL DEFAULT 0      -- the poller's listing that last saw it
);
CREATE INDEX sagemaker_endpoints_created ON sagemaker_endpoints (created_at, name, status);
CREATE INDEX local_endpoints_created ON local_endpoints (created_at, name, status);
