-- Webhook senders of issue 18: Quay cannot sign, and JFrog names repository keys rather
-- than the host Docker pulls from.
ALTER TABLE settings ADD COLUMN allow_unsigned_quay INTEGER NOT NULL DEFAULT 0
    CHECK (allow_unsigned_quay IN (0, 1));
ALTER TABLE settings ADD COLUMN jfrog_image_host TEXT
    CHECK (jfrog_image_host IS NULL OR length(jfrog_image_host) BETWEEN 1 AND 255);
