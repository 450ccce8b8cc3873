-- Local functions: the seeds' Lambda handler run in-process in front of a
-- local endpoint, with reserved and provisioned concurrency. No foreign key
-- to the endpoint: as on AWS, a function outlives the endpoint it calls and
-- then answers with the endpoint's absence.
CREATE TABLE local_functions (
    name         TEXT    PRIMARY KEY,
    endpoint     TEXT    NOT NULL,
    reserved     INTEGER CHECK (reserved IS NULL OR reserved >= 0),
    provisioned  INTEGER CHECK (provisioned IS NULL OR provisioned >= 1),
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL
);
