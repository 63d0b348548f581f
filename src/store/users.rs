//! Users, API tokens and UI sessions. Only hashes are stored: argon2id for passwords
//! (computed by the caller), SHA-256 for tokens and session ids, which are long random
//! strings and need no slow hash.

use chrono::{DateTime, Utc};
use rusqlite::Row;

use super::{
    Store, StoreError, StoreResult, changed_or_not_found, now, one, parse_column, parse_opt_time,
    parse_time, text_enum, timestamp,
};

text_enum! {
    /// What an API token may do, narrowest first. Sessions (the admin signed in) are
    /// `Admin`.
    pub enum TokenScope {
        /// GET only.
        Read => "read",
        /// Read, plus deploy a tag, redeploy, roll back and poll now: what CI needs.
        Deploy => "deploy",
        /// Everything.
        Admin => "admin",
    }
}

impl TokenScope {
    /// Whether a holder of `self` may do what needs `needed`.
    pub fn allows(self, needed: TokenScope) -> bool {
        self.rank() >= needed.rank()
    }

    fn rank(self) -> u8 {
        match self {
            TokenScope::Read => 0,
            TokenScope::Deploy => 1,
            TokenScope::Admin => 2,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub scope: TokenScope,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub user_id: i64,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        password_hash: row.get(2)?,
        created_at: parse_time(&row.get::<_, String>(3)?)?,
    })
}

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: row.get(0)?,
        user_id: row.get(1)?,
        name: row.get(2)?,
        created_at: parse_time(&row.get::<_, String>(3)?)?,
        last_used_at: parse_opt_time(row.get(4)?)?,
        scope: parse_column(row.get(5)?)?,
    })
}

impl Store {
    pub fn create_user(&self, username: &str, password_hash: &str) -> StoreResult<User> {
        let id = {
            let conn = self.conn();
            conn.execute(
                "INSERT INTO users (username, password_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
                (username, password_hash, now()),
            )?;
            conn.last_insert_rowid()
        };
        self.get_user(id)
    }

    pub fn get_user(&self, id: i64) -> StoreResult<User> {
        one(
            &self.conn(),
            "SELECT id, username, password_hash, created_at FROM users WHERE id = ?1",
            [id],
            user_from_row,
            "user",
            id,
        )
    }

    pub fn get_user_by_name(&self, username: &str) -> StoreResult<User> {
        one(
            &self.conn(),
            "SELECT id, username, password_hash, created_at FROM users WHERE username = ?1",
            [username],
            user_from_row,
            "user",
            username,
        )
    }

    pub fn count_users(&self) -> StoreResult<i64> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
    }

    /// Sets a new password hash and ends every session of the user.
    pub fn set_user_password(&self, id: i64, password_hash: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let changed = tx.execute(
            "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
            (id, password_hash, now()),
        )?;
        changed_or_not_found(changed, "user", id)?;
        tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    pub fn create_api_token(
        &self,
        user_id: i64,
        name: &str,
        scope: TokenScope,
        token_hash: &str,
    ) -> StoreResult<ApiToken> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO api_tokens (user_id, name, scope, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            (user_id, name, scope.as_str(), token_hash, now()),
        )?;
        let id = conn.last_insert_rowid();
        one(
            &conn,
            "SELECT id, user_id, name, created_at, last_used_at, scope FROM api_tokens WHERE id = ?1",
            [id],
            token_from_row,
            "api token",
            id,
        )
    }

    pub fn list_api_tokens(&self, user_id: i64) -> StoreResult<Vec<ApiToken>> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT id, user_id, name, created_at, last_used_at, scope FROM api_tokens WHERE user_id = ?1 ORDER BY name",
        )?;
        let rows = statement.query_map([user_id], token_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The user a token hash belongs to and the token's scope; records the use.
    pub fn user_for_token(&self, token_hash: &str) -> StoreResult<Option<(i64, TokenScope)>> {
        let conn = self.conn();
        let user = conn.query_row(
            "UPDATE api_tokens SET last_used_at = ?2 WHERE token_hash = ?1 RETURNING user_id, scope",
            (token_hash, now()),
            |r| Ok((r.get(0)?, parse_column(r.get(1)?)?)),
        );
        match user {
            Ok(id) => Ok(Some(id)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub fn revoke_api_token(&self, user_id: i64, id: i64) -> StoreResult<()> {
        let changed = self.conn().execute(
            "DELETE FROM api_tokens WHERE id = ?1 AND user_id = ?2",
            (id, user_id),
        )?;
        changed_or_not_found(changed, "api token", id)
    }

    pub fn create_session(
        &self,
        id_hash: &str,
        user_id: i64,
        csrf_token: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            (id_hash, user_id, csrf_token, now(), timestamp(expires_at)),
        )?;
        Ok(())
    }

    /// A live session; expired ones are deleted on sight.
    pub fn get_session(&self, id_hash: &str) -> StoreResult<Option<Session>> {
        let conn = self.conn();
        conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [now()])?;
        let session = conn.query_row(
            "SELECT user_id, csrf_token, expires_at FROM sessions WHERE id_hash = ?1",
            [id_hash],
            |row| {
                Ok(Session {
                    user_id: row.get(0)?,
                    csrf_token: row.get(1)?,
                    expires_at: parse_time(&row.get::<_, String>(2)?)?,
                })
            },
        );
        match session {
            Ok(s) => Ok(Some(s)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(StoreError::from(e)),
        }
    }

    pub fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        self.conn()
            .execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;
    use rusqlite_migration::{M, Migrations};

    use super::*;
    use crate::crypto::{MasterKey, Sealer};

    /// A database made before token scopes existed: its tokens could do everything, and
    /// after the upgrade they still can (nobody is locked out).
    #[test]
    fn tokens_from_before_scopes_become_admin() {
        let mut connection = Connection::open_in_memory().unwrap();
        Migrations::new(vec![M::up(include_str!("migrations/001_initial.sql"))])
            .to_latest(&mut connection)
            .unwrap();
        connection
            .execute_batch(
                "INSERT INTO users (id, username, password_hash, created_at, updated_at)
                     VALUES (1, 'admin', 'x', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z');
                 INSERT INTO api_tokens (user_id, name, token_hash, created_at)
                     VALUES (1, 'old-ci', 'hash-old', '2026-01-01T00:00:00.000Z');",
            )
            .unwrap();
        let store = Store::from_connection(connection, Sealer::new(MasterKey::generate())).unwrap();
        assert_eq!(
            store.user_for_token("hash-old").unwrap(),
            Some((1, TokenScope::Admin))
        );
        let new = store
            .create_api_token(1, "new-ci", TokenScope::Read, "hash-new")
            .unwrap();
        assert_eq!(
            new.scope,
            TokenScope::Read,
            "a new token keeps the scope it is given"
        );
    }

    #[test]
    fn wider_scopes_allow_narrower_ones() {
        use TokenScope::*;
        assert!(Admin.allows(Deploy) && Admin.allows(Read) && Deploy.allows(Read));
        assert!(!Read.allows(Deploy) && !Deploy.allows(Admin) && !Read.allows(Admin));
        assert!(Read.allows(Read));
    }
}
