-- SageMaker on-demand prices as the AWS Pricing API gave them, per region,
-- use (notebook, training, hosting) and instance type, so the Costs page asks
-- the API once a week per type instead of on every view. A NULL price means
-- the API had no such product in that region: the page says so.
CREATE TABLE instance_prices (
    region          TEXT    NOT NULL,
    usage           TEXT    NOT NULL CHECK (usage IN ('notebook', 'training', 'hosting')),
    instance_type   TEXT    NOT NULL,
    hourly_usd      REAL,
    effective       TEXT,                           -- the price's effectiveDate
    fetched_at      TEXT    NOT NULL,               -- milliseconds, UTC
    PRIMARY KEY (region, usage, instance_type)
);
