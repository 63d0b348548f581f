-- What webhooks may cost and how long their traces are kept (issue 12 §2, §3).
ALTER TABLE settings ADD COLUMN allow_unsigned_dockerhub INTEGER NOT NULL DEFAULT 0
    CHECK (allow_unsigned_dockerhub IN (0, 1));
ALTER TABLE settings ADD COLUMN auto_create_per_minute INTEGER NOT NULL DEFAULT 10
    CHECK (auto_create_per_minute BETWEEN 1 AND 10000);
ALTER TABLE settings ADD COLUMN webhook_event_retention_days INTEGER NOT NULL DEFAULT 30
    CHECK (webhook_event_retention_days BETWEEN 1 AND 3650);
ALTER TABLE settings ADD COLUMN webhook_event_max_count INTEGER NOT NULL DEFAULT 10000
    CHECK (webhook_event_max_count BETWEEN 100 AND 10000000);
ALTER TABLE settings ADD COLUMN deploy_log_retention_days INTEGER NOT NULL DEFAULT 90
    CHECK (deploy_log_retention_days BETWEEN 1 AND 3650);
ALTER TABLE settings ADD COLUMN deploy_logs_per_stage INTEGER NOT NULL DEFAULT 50
    CHECK (deploy_logs_per_stage BETWEEN 1 AND 100000);

-- Pruning by age reads the oldest events first.
CREATE INDEX webhook_events_by_time ON webhook_events(received_at);
