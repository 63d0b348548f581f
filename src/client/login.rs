//! Signing the command line in and out: `login` trades the admin password for an API
//! token named after this host and saves it, with the server's URL, in the user's config
//! folder (`docker-watcher/credentials.json`, mode 0600); `logout` revokes it and forgets
//! it. Every client command uses the saved token unless `--token`/`DW_TOKEN` is given.
//!
//! The password is only ever sent to `POST /api/auth/login`; the session it opens is used
//! once, to make the token, and ended right after.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cli::DEFAULT_SERVER;

/// What `login` saves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    /// Base URL of the daemon, without trailing slash.
    pub server: String,
    pub token: String,
    pub token_id: i64,
    pub token_name: String,
}

/// Where the credentials live: `$XDG_CONFIG_HOME/docker-watcher/credentials.json` (or
/// the platform's config folder).
pub fn credentials_path() -> anyhow::Result<PathBuf> {
    let dir = dirs::config_dir()
        .context("cannot tell where your config folder is: set HOME or XDG_CONFIG_HOME")?;
    Ok(dir.join("docker-watcher").join("credentials.json"))
}

/// The saved credentials, if `login` saved some.
pub fn load() -> anyhow::Result<Option<Credentials>> {
    let path = credentials_path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    serde_json::from_str(&text).map(Some).with_context(|| {
        format!(
            "{} is damaged: run `docker-watcher login` again",
            path.display()
        )
    })
}

/// Which server and token a client command uses: `--token`/`DW_TOKEN` with `--server`,
/// else the saved login (at its server, unless `--server` names another one).
pub fn resolve(server: &str, token: Option<&str>) -> anyhow::Result<(String, String)> {
    let server = server.trim_end_matches('/').to_string();
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        return Ok((server, token.to_string()));
    }
    let Some(saved) = load()? else {
        bail!(
            "not signed in: run `docker-watcher login --server {server}`, or pass --token / set DW_TOKEN"
        );
    };
    if server == DEFAULT_SERVER || server == saved.server {
        return Ok((saved.server, saved.token));
    }
    bail!(
        "signed in to {}, not {server}: run `docker-watcher login --server {server}`, or pass --token",
        saved.server
    )
}

/// `docker-watcher login`.
pub async fn login(server: &str, username: &str, password_stdin: bool) -> anyhow::Result<()> {
    let server = server.trim_end_matches('/').to_string();
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        rpassword::prompt_password(format!("Password for {username} at {server}: ")).context(
            "cannot ask for the password (no terminal?): pipe it in with --password-stdin",
        )?
    };
    if password.is_empty() {
        bail!("no password given");
    }
    let http = super::http_client()?;
    let session: Session = super::check(
        http.post(format!("{server}/api/auth/login"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .with_context(|| format!("cannot reach {server}"))?,
    )
    .await?
    .json()
    .await
    .context("the daemon's answer to the login is not the JSON expected")?;
    let made = make_token(&http, &server, &session.token).await;
    // The session was only for making the token; end it whatever happened.
    let _ = http
        .post(format!("{server}/api/auth/logout"))
        .bearer_auth(&session.token)
        .send()
        .await;
    let token = made?;
    let credentials = Credentials {
        server: server.clone(),
        token: token.token,
        token_id: token.id,
        token_name: token.name,
    };
    if let Some(old) = load().ok().flatten() {
        revoke_quietly(&http, &old).await;
    }
    let path = save(&credentials)?;
    eprintln!(
        "signed in to {server} as {username}: token {} saved in {}",
        credentials.token_name,
        path.display()
    );
    Ok(())
}

/// `docker-watcher logout`.
pub async fn logout() -> anyhow::Result<()> {
    let Some(saved) = load()? else {
        eprintln!("not signed in; nothing to do");
        return Ok(());
    };
    let http = super::http_client()?;
    let answer = http
        .delete(format!(
            "{}/api/auth/tokens/{}",
            saved.server, saved.token_id
        ))
        .bearer_auth(&saved.token)
        .send()
        .await;
    let path = credentials_path()?;
    match answer {
        Ok(response) if response.status().is_success() => {
            eprintln!("token {} revoked", saved.token_name)
        }
        // Revoked already (in the UI, or by another logout): the saved one is no use.
        Ok(response) if response.status() == reqwest::StatusCode::UNAUTHORIZED => {
            eprintln!("token {} was revoked already", saved.token_name)
        }
        Ok(response) => {
            let error = super::check(response).await.err();
            bail!(
                "the daemon did not revoke token {} ({}); {} is kept, try again",
                saved.token_name,
                error.map(|e| format!("{e:#}")).unwrap_or_default(),
                path.display()
            )
        }
        Err(e) => bail!(
            "cannot reach {} to revoke token {} ({e}); {} is kept, try again when it is up",
            saved.server,
            saved.token_name,
            path.display()
        ),
    }
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    eprintln!("signed out of {}", saved.server);
    Ok(())
}

#[derive(Deserialize)]
struct Session {
    token: String,
}

#[derive(Deserialize)]
struct CreatedToken {
    id: i64,
    name: String,
    token: String,
}

/// A token `cli-<host>` (or `cli-<host>-2`, … when this host has one already: another
/// user account of the machine, or a login never logged out of).
async fn make_token(
    http: &reqwest::Client,
    server: &str,
    session: &str,
) -> anyhow::Result<CreatedToken> {
    let base = token_name(&host_name());
    for n in 1..=20 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let response = http
            .post(format!("{server}/api/auth/tokens"))
            .bearer_auth(session)
            .json(&json!({ "name": name, "scope": "admin" }))
            .send()
            .await
            .with_context(|| format!("cannot reach {server}"))?;
        if response.status() == reqwest::StatusCode::CONFLICT {
            continue;
        }
        return super::check(response)
            .await?
            .json()
            .await
            .context("the daemon's answer to making a token is not the JSON expected");
    }
    bail!(
        "this host has 20 tokens named {base}-…: revoke old ones in the UI (Settings → API tokens)"
    )
}

async fn revoke_quietly(http: &reqwest::Client, old: &Credentials) {
    let _ = http
        .delete(format!("{}/api/auth/tokens/{}", old.server, old.token_id))
        .bearer_auth(&old.token)
        .send()
        .await;
}

/// Writes the credentials 0600 (in a 0700 folder), replacing the file in one rename.
fn save(credentials: &Credentials) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = credentials_path()?;
    let dir = path
        .parent()
        .context("the credentials path has no folder")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let partial = dir.join("credentials.json.partial");
    let _ = std::fs::remove_file(&partial);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    file.write_all(serde_json::to_string_pretty(credentials)?.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// This machine's name, as `hostname` prints it.
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return "host".into();
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// `cli-<host>` in the letters a token name may have (lower-case, digits, dashes).
fn token_name(host: &str) -> String {
    let host = host.split('.').next().unwrap_or(host).to_lowercase();
    let cleaned: String = host
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let cleaned = cleaned.trim_matches('-');
    let cleaned = if cleaned.is_empty() { "host" } else { cleaned };
    let cut: String = cleaned.chars().take(40).collect();
    format!("cli-{}", cut.trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_names_are_what_the_api_takes() {
        assert_eq!(token_name("Build-Box.example.com"), "cli-build-box");
        assert_eq!(token_name("héllo_wörld"), "cli-h-llo-w-rld");
        assert_eq!(token_name("..."), "cli-host");
        assert_eq!(token_name(&"a".repeat(100)).len(), 44);
        assert!(!host_name().is_empty());
    }
}
