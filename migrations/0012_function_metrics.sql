-- Local functions' metrics per minute, named as CloudWatch's AWS/Lambda
-- names them: Invocations (errors included, throttles not), Errors,
-- Throttles, Duration (kept as a sum, charted as the average) and
-- ConcurrentExecutions (the most at once in the minute).
CREATE TABLE function_metrics (
    function        TEXT    NOT NULL,
    minute          INTEGER NOT NULL,
    invocations     INTEGER NOT NULL DEFAULT 0,
    errors          INTEGER NOT NULL DEFAULT 0,
    throttles       INTEGER NOT NULL DEFAULT 0,
    duration_us_sum INTEGER NOT NULL DEFAULT 0,
    concurrent_max  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (function, minute)
);
