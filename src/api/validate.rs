//! The checks the API runs on what people send, each returning the reason in words a form
//! can show next to the field. Richer values have their own parsers (`ImageRef`,
//! `TagPattern`, `Subdomain`); these cover the plain ones.

use std::time::Duration;

/// Longest name of a project, stage, registry, notification target or token.
pub const NAME_MAX: usize = 63;

/// A DNS-safe name: lowercase letters, digits and dashes, 1–63 characters, no dash at
/// either end. Project and stage names become parts of domain names.
pub fn dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > NAME_MAX {
        return Err(format!(
            "must be at most {NAME_MAX} characters (it has {})",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("may contain only lowercase letters, digits and dashes".into());
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("must not start or end with a dash".into());
    }
    Ok(())
}

/// A TCP port a container listens on.
pub fn port(port: u32) -> Result<u16, String> {
    match u16::try_from(port) {
        Ok(p) if p >= 1 => Ok(p),
        _ => Err("must be a port from 1 to 65535".into()),
    }
}

/// Longest HTTP path a request may set.
pub const HTTP_PATH_MAX: usize = 2048;

/// Longest URL a request may set (a notification target's).
pub const URL_MAX: usize = 2048;

/// Longest environment variable name.
pub const ENV_NAME_MAX: usize = 255;

/// An HTTP path such as a health-check path.
pub fn http_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("must start with /".into());
    }
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "must be printable ASCII without spaces (percent-encode other characters)".into(),
        );
    }
    if path.len() > HTTP_PATH_MAX {
        return Err(format!("must be at most {HTTP_PATH_MAX} characters"));
    }
    Ok(())
}

/// An environment variable name: a letter or `_`, then letters, digits and `_`.
pub fn env_name(name: &str) -> Result<(), String> {
    if name.len() > ENV_NAME_MAX {
        return Err(format!("must be at most {ENV_NAME_MAX} characters"));
    }
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return Err(format!("{name:?} must start with a letter or _")),
    }
    if chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!("{name:?} may contain only letters, digits and _"))
    }
}

/// A bind mount or volume: `source:destination[:ro|rw]`, destination absolute.
pub fn volume(spec: &str) -> Result<(), String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let ok = match parts.as_slice() {
        [source, destination] => !source.is_empty() && destination.starts_with('/'),
        [source, destination, mode] => {
            !source.is_empty()
                && destination.starts_with('/')
                && mode
                    .split(',')
                    .all(|m| matches!(m, "ro" | "rw" | "z" | "Z"))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{spec:?} must look like source:/destination or source:/destination:ro"
        ))
    }
}

/// A duration in milliseconds within `min..=max`.
pub fn millis(value: u64, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = Duration::from_millis(value);
    if d < min || d > max {
        Err(format!(
            "must be between {} and {} ms",
            min.as_millis(),
            max.as_millis()
        ))
    } else {
        Ok(d)
    }
}

/// An integer within `min..=max`.
pub fn range(value: u64, min: u64, max: u64) -> Result<u64, String> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!("must be between {min} and {max}"))
    }
}

/// A URL as given: no spaces or control characters anywhere (around it included: the
/// document's pattern refuses them, so trimming here would accept what it calls invalid;
/// a URL parser would quietly strip or percent-encode them), at most [`URL_MAX`].
pub fn url_text(url: &str) -> Result<(), String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    if url.len() > URL_MAX {
        return Err(format!("must be at most {URL_MAX} characters"));
    }
    Ok(())
}

/// An `http://` or `https://` URL with a host.
pub fn http_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(parsed)
            if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some() =>
        {
            Ok(())
        }
        Ok(_) => Err("must be an http:// or https:// URL".into()),
        Err(e) => Err(format!("is not a URL ({e})")),
    }
}

/// A password people choose: long enough to resist guessing, short enough for argon2.
pub fn password(password: &str) -> Result<(), String> {
    let count = password.chars().count();
    if count < 8 {
        Err("must be at least 8 characters".into())
    } else if count > 1024 {
        Err("must be at most 1024 characters".into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(dns_name("shop").is_ok());
        assert!(dns_name("shop-2").is_ok());
        assert!(dns_name(&"a".repeat(63)).is_ok());
        assert!(dns_name(&"a".repeat(64)).is_err());
        assert!(dns_name("").is_err());
        assert!(dns_name("-shop").is_err());
        assert!(dns_name("shop-").is_err());
        assert!(dns_name("Shop").is_err());
        assert!(dns_name("shop_2").is_err());
        assert!(dns_name("shop.io").is_err());
    }

    #[test]
    fn ports_paths_envs_volumes() {
        assert_eq!(port(8080), Ok(8080));
        assert!(port(0).is_err());
        assert!(port(65536).is_err());
        assert!(http_path("/health").is_ok());
        assert!(http_path("health").is_err());
        assert!(http_path("/he alth").is_err());
        assert!(http_path("/santé").is_err());
        assert!(http_path(&format!("/{}", "h".repeat(HTTP_PATH_MAX))).is_err());
        assert!(http_path(&format!("/{}", "h".repeat(HTTP_PATH_MAX - 1))).is_ok());
        assert!(env_name("DATABASE_URL").is_ok());
        assert!(env_name("_X1").is_ok());
        assert!(env_name("1X").is_err());
        assert!(env_name("A-B").is_err());
        assert!(volume("data:/var/lib/data").is_ok());
        assert!(volume("/srv/x:/x:ro").is_ok());
        assert!(volume("/srv/x").is_err());
        assert!(volume("x:relative").is_err());
        assert!(volume("x:/y:bogus").is_err());
    }

    #[test]
    fn urls_and_ranges() {
        assert!(http_url("https://npm.example.com:81").is_ok());
        assert!(http_url("ftp://x").is_err());
        assert!(http_url("not a url").is_err());
        assert!(range(5, 1, 10).is_ok());
        assert!(range(11, 1, 10).is_err());
        assert!(millis(50, Duration::from_millis(100), Duration::from_secs(1)).is_err());
        assert!(password("short").is_err());
        assert!(password("long enough").is_ok());
    }
}
