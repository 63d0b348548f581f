//! One URL per target, in the shoutrrr/Apprise style, so people can paste what they
//! already use: `telegram://TOKEN@telegram?chats=…`, `smtp://user:pass@host:587/?to=…`.
//! [`Destination::parse`] reads one, [`Destination::to_url`] writes the canonical form
//! (which parses back to the same destination). The whole URL is sealed at rest.

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use url::Url;

use crate::store::NotificationKind;

/// Where and how one target is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// An HTTP(S) URL that takes a JSON body, Slack/Discord/Teams webhook or ntfy topic.
    Http {
        kind: NotificationKind,
        url: String,
    },
    /// Telegram Bot API: a bot token and the chats (ids or `@channel` names).
    Telegram {
        token: String,
        chats: Vec<String>,
    },
    /// Gotify: the server (`https://host[:port][/prefix]`) and an application token.
    Gotify {
        server: String,
        token: String,
        priority: Option<u8>,
    },
    Email(Email),
    /// Matrix client-server API: homeserver, access token, room ids (`!id:server`).
    Matrix {
        server: String,
        token: String,
        rooms: Vec<String>,
    },
    /// Pushover: application token, user (or group) key, optional devices.
    Pushover {
        token: String,
        user: String,
        devices: Vec<String>,
        priority: Option<i8>,
    },
    /// Apprise API: `http(s)://host[:port]/notify/KEY`, optional tags.
    Apprise {
        url: String,
        tags: Vec<String>,
    },
}

/// An SMTP server and the mail's addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub security: Security,
}

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with STARTTLS (required; port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS: only for a relay on the same host or network.
    None,
}

/// The kinds that are plain HTTP(S) URLs, and the scheme prefix that marks each.
const HTTP_KINDS: &[(NotificationKind, &str)] = &[
    (NotificationKind::Webhook, "webhook"),
    (NotificationKind::Slack, "slack"),
    (NotificationKind::Discord, "discord"),
    (NotificationKind::Ntfy, "ntfy"),
    (NotificationKind::Teams, "teams"),
];

impl Destination {
    /// Reads a target URL. A plain `http(s)://` URL is taken as `plain_kind` (the JSON
    /// webhook when `None`); every other form names its service in the scheme.
    pub fn parse(text: &str, plain_kind: Option<NotificationKind>) -> Result<Destination, String> {
        let text = text.trim();
        let (scheme, _) = text
            .split_once("://")
            .ok_or("expected a URL such as https://…, telegram://…, smtp://…")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "http" || scheme == "https" {
            return http(plain_kind.unwrap_or(NotificationKind::Webhook), text);
        }
        if let Some((prefix, _)) = scheme.split_once('+') {
            let rest = &text[prefix.len() + 1..];
            if let Some((kind, _)) = HTTP_KINDS
                .iter()
                .find(|(_, p)| *p == prefix || (prefix == "generic" && *p == "webhook"))
            {
                return http(*kind, rest);
            }
            if prefix == "apprise" {
                return apprise(rest);
            }
            return Err(format!(
                "unknown scheme {scheme}+: expected webhook+, slack+, discord+, ntfy+, teams+ or apprise+"
            ));
        }
        let url = Url::parse(text).map_err(|e| format!("not a valid URL: {e}"))?;
        match scheme.as_str() {
            "telegram" => telegram(&url),
            "gotify" => gotify(&url),
            "smtp" => email(&url),
            "matrix" => matrix(&url),
            "pushover" => pushover(&url),
            other => Err(format!(
                "unknown scheme {other}: expected http(s), telegram, gotify, smtp, matrix, pushover, \
                 or webhook+/slack+/discord+/ntfy+/teams+/apprise+ before an https URL"
            )),
        }
    }

    /// The service this destination talks to.
    pub fn kind(&self) -> NotificationKind {
        match self {
            Destination::Http { kind, .. } => *kind,
            Destination::Telegram { .. } => NotificationKind::Telegram,
            Destination::Gotify { .. } => NotificationKind::Gotify,
            Destination::Email(_) => NotificationKind::Email,
            Destination::Matrix { .. } => NotificationKind::Matrix,
            Destination::Pushover { .. } => NotificationKind::Pushover,
            Destination::Apprise { .. } => NotificationKind::Apprise,
        }
    }

    /// The canonical URL; `parse(to_url())` gives this destination back.
    pub fn to_url(&self) -> String {
        match self {
            Destination::Http { kind, url } => {
                let prefix = HTTP_KINDS
                    .iter()
                    .find(|(k, _)| k == kind)
                    .map_or("webhook", |(_, p)| p);
                format!("{prefix}+{url}")
            }
            Destination::Telegram { token, chats } => {
                format!("telegram://{}@telegram?chats={}", enc(token), list(chats))
            }
            Destination::Gotify {
                server,
                token,
                priority,
            } => {
                let (tls, rest) = split_scheme(server);
                let mut out = format!("gotify://{rest}/{}", enc(token));
                let mut query = Vec::new();
                if let Some(p) = priority {
                    query.push(format!("priority={p}"));
                }
                if !tls {
                    query.push("disabletls=yes".into());
                }
                if !query.is_empty() {
                    let _ = write!(out, "?{}", query.join("&"));
                }
                out
            }
            Destination::Email(e) => {
                let mut out = "smtp://".to_string();
                if let Some(user) = &e.username {
                    out.push_str(&enc(user));
                    if let Some(password) = &e.password {
                        let _ = write!(out, ":{}", enc(password));
                    }
                    out.push('@');
                }
                let security = match e.security {
                    Security::StartTls => "starttls",
                    Security::Implicit => "implicit",
                    Security::None => "none",
                };
                let _ = write!(
                    out,
                    "{}:{}/?from={}&to={}&encryption={security}",
                    e.host,
                    e.port,
                    enc(&e.from),
                    list(&e.to)
                );
                out
            }
            Destination::Matrix {
                server,
                token,
                rooms,
            } => {
                let (tls, rest) = split_scheme(server);
                let mut out = format!("matrix://:{}@{rest}/?rooms={}", enc(token), list(rooms));
                if !tls {
                    out.push_str("&disabletls=yes");
                }
                out
            }
            Destination::Pushover {
                token,
                user,
                devices,
                priority,
            } => {
                let mut out = format!("pushover://shoutrrr:{}@{}/", enc(token), enc(user));
                let mut query = Vec::new();
                if !devices.is_empty() {
                    query.push(format!("devices={}", list(devices)));
                }
                if let Some(p) = priority {
                    query.push(format!("priority={p}"));
                }
                if !query.is_empty() {
                    let _ = write!(out, "?{}", query.join("&"));
                }
                out
            }
            Destination::Apprise { url, tags } => {
                if tags.is_empty() {
                    format!("apprise+{url}")
                } else {
                    format!("apprise+{url}?tags={}", list(tags))
                }
            }
        }
    }
}

/// Everything but RFC 3986's unreserved characters is percent-encoded in a URL part.
pub(super) const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

fn dec(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

fn list(items: &[String]) -> String {
    items.iter().map(|i| enc(i)).collect::<Vec<_>>().join(",")
}

fn split_scheme(server: &str) -> (bool, &str) {
    match server.strip_prefix("https://") {
        Some(rest) => (true, rest),
        None => (false, server.strip_prefix("http://").unwrap_or(server)),
    }
}

/// A query parameter (names compared case-insensitively, as shoutrrr does).
fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

fn param_list(url: &Url, name: &str) -> Vec<String> {
    param(url, name)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn yes(url: &Url, name: &str) -> bool {
    param(url, name)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "yes" | "true" | "1"))
}

fn host_port(url: &Url) -> Result<String, String> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("the URL needs a host")?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

fn http(kind: NotificationKind, text: &str) -> Result<Destination, String> {
    match Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
        Ok(_) => return Err("must be an http:// or https:// URL".into()),
        Err(e) => return Err(format!("is not a URL ({e})")),
    }
    Ok(Destination::Http {
        kind,
        url: text.to_string(),
    })
}

fn telegram(url: &Url) -> Result<Destination, String> {
    let user = dec(url.username());
    let token = match url.password() {
        Some(rest) => format!("{user}:{}", dec(rest)),
        None => user,
    };
    if token.is_empty() || !token.contains(':') {
        return Err(
            "telegram:// needs the bot token before the @, like 123456:ABC-DEF@telegram".into(),
        );
    }
    let chats = param_list(url, "chats");
    if chats.is_empty() {
        return Err("telegram:// needs ?chats= with at least one chat id or @channel".into());
    }
    Ok(Destination::Telegram { token, chats })
}

fn gotify(url: &Url) -> Result<Destination, String> {
    let host = host_port(url)?;
    let mut segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    let token = segments
        .pop()
        .map(dec)
        .ok_or("gotify:// needs the application token as the last path segment")?;
    let scheme = if yes(url, "disabletls") {
        "http"
    } else {
        "https"
    };
    let prefix: String = segments.iter().map(|s| format!("/{s}")).collect();
    let priority = param(url, "priority")
        .map(|p| {
            p.parse::<u8>()
                .map_err(|_| "gotify priority must be a number 0–255")
        })
        .transpose()?;
    Ok(Destination::Gotify {
        server: format!("{scheme}://{host}{prefix}"),
        token,
        priority,
    })
}

fn email(url: &Url) -> Result<Destination, String> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("smtp:// needs the mail server's host")?;
    let security = match param(url, "encryption")
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("starttls" | "explicittls") => Security::StartTls,
        Some("implicit" | "implicittls" | "tls" | "ssl") => Security::Implicit,
        Some("none") => Security::None,
        Some(other) => {
            return Err(format!(
                "unknown encryption {other:?}: expected starttls, implicit or none"
            ));
        }
        None if url.port() == Some(465) => Security::Implicit,
        None => Security::StartTls,
    };
    let port = url.port().unwrap_or(match security {
        Security::Implicit => 465,
        Security::StartTls => 587,
        Security::None => 25,
    });
    let username = Some(dec(url.username())).filter(|u| !u.is_empty());
    let password = url.password().map(dec);
    let to = param_list(url, "to");
    if to.is_empty() {
        return Err("smtp:// needs ?to= with at least one address".into());
    }
    let from = param(url, "from")
        .or_else(|| username.clone().filter(|u| u.contains('@')))
        .ok_or("smtp:// needs ?from= (or a user name that is an address)")?;
    for address in to.iter().chain([&from]) {
        address
            .parse::<lettre::Address>()
            .map_err(|e| format!("{address:?} is not a mail address: {e}"))?;
    }
    Ok(Destination::Email(Email {
        host: host.to_string(),
        port,
        username,
        password,
        from,
        to,
        security,
    }))
}

fn matrix(url: &Url) -> Result<Destination, String> {
    let host = host_port(url)?;
    let token =
        url.password().map(dec).filter(|t| !t.is_empty()).ok_or(
            "matrix:// needs an access token, like matrix://:TOKEN@host/?rooms=!room:server",
        )?;
    let rooms = param_list(url, "rooms");
    if rooms.is_empty() {
        return Err("matrix:// needs ?rooms= with at least one room id".into());
    }
    if let Some(bad) = rooms
        .iter()
        .find(|r| !r.starts_with('!') || !r.contains(':'))
    {
        return Err(format!(
            "{bad:?} is not a room id: use the id (!abc:server) from the room's settings"
        ));
    }
    let scheme = if yes(url, "disabletls") {
        "http"
    } else {
        "https"
    };
    Ok(Destination::Matrix {
        server: format!("{scheme}://{host}"),
        token,
        rooms,
    })
}

fn pushover(url: &Url) -> Result<Destination, String> {
    let token = url.password().map(dec).filter(|t| !t.is_empty());
    let user = url.host_str().map(dec).filter(|u| !u.is_empty());
    let (Some(token), Some(user)) = (token, user) else {
        return Err("pushover:// needs the form pushover://shoutrrr:APP_TOKEN@USER_KEY/".into());
    };
    let priority = param(url, "priority")
        .map(|p| match p.parse::<i8>() {
            Ok(p) if (-2..=1).contains(&p) => Ok(p),
            _ => Err("pushover priority must be -2, -1, 0 or 1"),
        })
        .transpose()?;
    Ok(Destination::Pushover {
        token,
        user,
        devices: param_list(url, "devices"),
        priority,
    })
}

fn apprise(text: &str) -> Result<Destination, String> {
    let url = Url::parse(text).map_err(|e| format!("not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("apprise+ needs an http(s) URL of the Apprise API".into());
    }
    if !url.path().starts_with("/notify/") || url.path().len() <= "/notify/".len() {
        return Err("apprise+ needs the API's /notify/KEY URL, like apprise+https://apprise.example/notify/team".into());
    }
    let tags = param_list(&url, "tags");
    let mut bare = url.clone();
    bare.set_query(None);
    bare.set_fragment(None);
    Ok(Destination::Apprise {
        url: bare.to_string(),
        tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> Destination {
        let d = Destination::parse(text, None).unwrap_or_else(|e| panic!("{text}: {e}"));
        let again = Destination::parse(&d.to_url(), None).unwrap();
        assert_eq!(again, d, "{text} → {}", d.to_url());
        d
    }

    #[test]
    fn shoutrrr_forms_parse_to_their_parts() {
        assert_eq!(
            round_trip("telegram://123456:ABC-def_9@telegram?chats=@ops,-1001234"),
            Destination::Telegram {
                token: "123456:ABC-def_9".into(),
                chats: vec!["@ops".into(), "-1001234".into()]
            }
        );
        assert_eq!(
            round_trip(
                "smtp://bot%40example.test:p%40ss:w@mail.example.test:587/?from=bot@example.test&to=a@example.test,b@example.test"
            ),
            Destination::Email(Email {
                host: "mail.example.test".into(),
                port: 587,
                username: Some("bot@example.test".into()),
                password: Some("p@ss:w".into()),
                from: "bot@example.test".into(),
                to: vec!["a@example.test".into(), "b@example.test".into()],
                security: Security::StartTls,
            })
        );
        let Destination::Email(implicit) =
            round_trip("smtp://mail.example.test:465/?to=a@example.test&from=x@example.test")
        else {
            panic!()
        };
        assert_eq!(implicit.security, Security::Implicit);
        assert_eq!(
            round_trip("gotify://push.example.test:8443/gotify/AbCd.123?priority=8"),
            Destination::Gotify {
                server: "https://push.example.test:8443/gotify".into(),
                token: "AbCd.123".into(),
                priority: Some(8)
            }
        );
        assert_eq!(
            round_trip(
                "matrix://:syt_token@matrix.example.test/?rooms=!abc:example.test&disabletls=yes"
            ),
            Destination::Matrix {
                server: "http://matrix.example.test".into(),
                token: "syt_token".into(),
                rooms: vec!["!abc:example.test".into()]
            }
        );
        assert_eq!(
            round_trip(
                "pushover://shoutrrr:azGDORePK8gMaC0QOYAMyEEuzJnyUi@uQiRzpo4DXghDmr9QzzfQu27cmVRsG/?devices=phone"
            ),
            Destination::Pushover {
                token: "azGDORePK8gMaC0QOYAMyEEuzJnyUi".into(),
                user: "uQiRzpo4DXghDmr9QzzfQu27cmVRsG".into(),
                devices: vec!["phone".into()],
                priority: None
            }
        );
        assert_eq!(
            round_trip("apprise+https://apprise.example.test/notify/team?tags=ops"),
            Destination::Apprise {
                url: "https://apprise.example.test/notify/team".into(),
                tags: vec!["ops".into()]
            }
        );
        assert_eq!(
            round_trip("teams+https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=S"),
            Destination::Http { kind: NotificationKind::Teams, url: "https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=S".into() }
        );
        assert_eq!(
            round_trip("https://hooks.example.test/x").kind(),
            NotificationKind::Webhook
        );
        assert_eq!(
            round_trip("generic+https://hooks.example.test/x").kind(),
            NotificationKind::Webhook
        );
    }

    #[test]
    fn plain_https_takes_the_given_kind() {
        let d = Destination::parse(
            "https://hooks.slack.com/services/T/B/X",
            Some(NotificationKind::Slack),
        )
        .unwrap();
        assert_eq!(d.to_url(), "slack+https://hooks.slack.com/services/T/B/X");
    }

    #[test]
    fn bad_forms_say_what_is_missing() {
        for (text, needle) in [
            ("telegram://telegram?chats=1", "bot token"),
            ("telegram://1:A@telegram", "chats"),
            ("smtp://mail.example.test/?from=a@example.test", "?to="),
            (
                "smtp://mail.example.test/?to=not-an-address&from=a@example.test",
                "not a mail address",
            ),
            (
                "smtp://mail.example.test/?to=a@example.test&from=a@example.test&encryption=rot13",
                "encryption",
            ),
            (
                "matrix://:t@m.example.test/?rooms=#alias:m.example.test",
                "room id",
            ),
            ("matrix://m.example.test/?rooms=!a:b", "access token"),
            ("pushover://shoutrrr@user/", "APP_TOKEN"),
            ("apprise+https://apprise.example.test/", "/notify/KEY"),
            ("irc://x", "unknown scheme"),
            ("nonsense", "expected a URL"),
        ] {
            let e = Destination::parse(text, None).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn word() -> impl Strategy<Value = String> {
            "[A-Za-z0-9_.~:@!#%&+= -]{1,16}".prop_filter("not blank", |s| {
                !s.trim().is_empty() && s.trim() == s && !s.contains(',')
            })
        }
        /// Gotify's application tokens (`AiK1NtzH.4D2i1P`): a path segment, so never
        /// `.` or `..`, which URL parsing removes as dot segments.
        fn gotify_token() -> impl Strategy<Value = String> {
            "[A-Za-z0-9_-][A-Za-z0-9_.-]{0,19}"
        }
        fn host() -> impl Strategy<Value = String> {
            "[a-z]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-z]{2,5}){0,2}"
        }
        fn address() -> impl Strategy<Value = String> {
            ("[a-z][a-z0-9+_-]{0,8}(\\.[a-z0-9]{1,4})?", host())
                .prop_map(|(l, h)| format!("{l}@{h}.test"))
        }

        fn destination() -> impl Strategy<Value = Destination> {
            prop_oneof![
                (
                    "[0-9]{1,10}",
                    "[A-Za-z0-9_-]{1,35}",
                    prop::collection::vec("-?[0-9]{1,13}|@[a-z]{3,10}", 1..4)
                )
                    .prop_map(|(id, secret, chats)| Destination::Telegram {
                        token: format!("{id}:{secret}"),
                        chats
                    }),
                (
                    host(),
                    any::<bool>(),
                    prop::option::of(1u16..),
                    gotify_token(),
                    prop::option::of(any::<u8>()),
                    "(/[a-z]{1,5}){0,2}"
                )
                    .prop_map(|(h, tls, port, token, priority, prefix)| {
                        Destination::Gotify {
                            server: format!(
                                "{}://{h}{}{prefix}",
                                if tls { "https" } else { "http" },
                                port.map(|p| format!(":{p}")).unwrap_or_default()
                            ),
                            token,
                            priority,
                        }
                    }),
                (
                    host(),
                    1u16..,
                    prop::option::of((word(), prop::option::of(word()))),
                    address(),
                    prop::collection::vec(address(), 1..3),
                    prop_oneof![
                        Just(Security::StartTls),
                        Just(Security::Implicit),
                        Just(Security::None)
                    ]
                )
                    .prop_map(|(host, port, creds, from, to, security)| {
                        Destination::Email(Email {
                            host,
                            port,
                            username: creds.as_ref().map(|c| c.0.clone()),
                            password: creds.and_then(|c| c.1),
                            from,
                            to,
                            security,
                        })
                    }),
                (
                    host(),
                    any::<bool>(),
                    word(),
                    prop::collection::vec("![A-Za-z]{4,12}:[a-z]{2,8}\\.test", 1..3)
                )
                    .prop_map(|(h, tls, token, rooms)| Destination::Matrix {
                        server: format!("{}://{h}", if tls { "https" } else { "http" }),
                        token,
                        rooms
                    }),
                (
                    "[A-Za-z0-9]{30}",
                    "[A-Za-z0-9]{30}",
                    prop::collection::vec("[a-z0-9_-]{1,25}", 0..3),
                    prop::option::of(-2i8..=1)
                )
                    .prop_map(|(token, user, devices, priority)| {
                        Destination::Pushover {
                            token,
                            user,
                            devices,
                            priority,
                        }
                    }),
            ]
        }

        proptest! {
            #[test]
            fn every_destination_round_trips_through_its_url(d in destination()) {
                let url = d.to_url();
                let back = Destination::parse(&url, None);
                prop_assert_eq!(back, Ok(d), "{}", url);
            }
        }
    }
}
