-- Issue 12 (security): least privilege for API tokens and for deployed containers.

-- A token's scope: `read` (GET only), `deploy` (read, plus deploy, redeploy, roll back,
-- poll now) or `admin` (everything). Tokens made before scopes existed could do
-- everything; they become `admin`, so nobody is locked out by the upgrade. The store
-- always names the scope of a new token, so this default applies only to old rows.
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin'
    CHECK (scope IN ('read', 'deploy', 'admin'));

-- What a deployed container may get: host folders it may bind-mount (a JSON list of
-- absolute paths; empty means none), and whether `network: host` is allowed.
ALTER TABLE settings ADD COLUMN allowed_bind_paths_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE settings ADD COLUMN allow_host_network INTEGER NOT NULL DEFAULT 0
    CHECK (allow_host_network IN (0, 1));
