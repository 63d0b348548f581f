-- How long the audit log is kept, a setting like the other retention limits (it was a
-- fixed year; the default stays a year).
ALTER TABLE settings ADD COLUMN audit_retention_days INTEGER NOT NULL DEFAULT 365
    CHECK (audit_retention_days BETWEEN 1 AND 3650);
