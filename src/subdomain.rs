//! Domain names for stages and instances: the settings' patterns (`stage-{stage}-{project}`,
//! `stage-{stage}-{project}-{tag}`) filled with a project, stage and tag, made DNS-safe and
//! put under the base domain.
//!
//! The rules, applied to each value before it goes into a pattern: ASCII letters are lower
//! cased, `.` and `_` become `-`, every other character that a host name cannot carry is
//! dropped, runs of `-` collapse and a label never starts or ends with `-`. A label longer
//! than 63 characters is cut and ends with `-` and a short hash of the whole label, and the
//! whole name must fit in 253 characters.
//!
//! Tags get one more rule, because two distinct tags must never share a domain (the two
//! instances would take each other's proxy host): when the DNS-safe form of a tag differs
//! from the tag itself (`v1.2` → `v1-2`, `Dev` → `dev`), a short hash of the original tag is
//! appended, so `v1.2` and `v1-2` get different names. A tag that is already DNS-safe
//! (`dev-4f2a91`, `latest`) is used as it is. Project and stage names are not hashed: the
//! names are chosen by people, once, and a readable stage domain matters more there.
//!
//! This module knows nothing of proxies or the store; it only builds and checks names.

use std::fmt;

use sha2::{Digest, Sha256};

/// A valid DNS name (lower case, labels of 1–63 letters, digits and inner dashes, at most
/// 253 characters in all). Built by [`Subdomain::for_stage`], [`Subdomain::for_instance`]
/// or checked by [`Subdomain::parse`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subdomain(String);

/// Why no domain name could be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubdomainError {
    #[error("the subdomain pattern {pattern:?} needs the placeholder {{{placeholder}}}; add it")]
    MissingPlaceholder {
        pattern: String,
        placeholder: &'static str,
    },
    #[error(
        "the subdomain pattern {pattern:?} has an unknown placeholder {{{placeholder}}}; use {{project}}, {{stage}} or {{tag}}"
    )]
    UnknownPlaceholder {
        pattern: String,
        placeholder: String,
    },
    #[error("the subdomain pattern {pattern:?} is not usable: {reason}")]
    BadPattern { pattern: String, reason: String },
    #[error("the {what} {value:?} has no character a domain name can carry; use letters or digits")]
    NothingValid { what: &'static str, value: String },
    #[error("{name:?} is not a valid domain name: {reason}")]
    InvalidName { name: String, reason: String },
    #[error(
        "the domain {name} is longer than 253 characters; shorten the base domain or the subdomain pattern"
    )]
    TooLong { name: String },
}

impl Subdomain {
    /// The stage's domain: `pattern` must use `{project}` and `{stage}` (and not `{tag}`).
    pub fn for_stage(
        pattern: &str,
        base_domain: &str,
        project: &str,
        stage: &str,
    ) -> Result<Subdomain, SubdomainError> {
        let pattern = Pattern::parse(pattern, PatternUse::Stage)?;
        let values = Values {
            project: sanitize_name("project name", project)?,
            stage: sanitize_name("stage name", stage)?,
            tag: None,
        };
        build(&pattern, &values, base_domain)
    }

    /// An instance's domain: `pattern` must use `{project}`, `{stage}` and `{tag}`.
    pub fn for_instance(
        pattern: &str,
        base_domain: &str,
        project: &str,
        stage: &str,
        tag: &str,
    ) -> Result<Subdomain, SubdomainError> {
        let pattern = Pattern::parse(pattern, PatternUse::Instance)?;
        let values = Values {
            project: sanitize_name("project name", project)?,
            stage: sanitize_name("stage name", stage)?,
            tag: Some(sanitize_tag(tag)),
        };
        build(&pattern, &values, base_domain)
    }

    /// Checks a complete domain name as given (a trailing dot is dropped, letters are lower
    /// cased; nothing else is changed).
    pub fn parse(name: &str) -> Result<Subdomain, SubdomainError> {
        let lowered = name.trim().trim_end_matches('.').to_ascii_lowercase();
        let invalid = |reason: String| SubdomainError::InvalidName {
            name: name.to_string(),
            reason,
        };
        if lowered.is_empty() {
            return Err(invalid("it is empty".into()));
        }
        if lowered.len() > MAX_NAME {
            return Err(SubdomainError::TooLong { name: lowered });
        }
        for label in lowered.split('.') {
            check_label(label).map_err(invalid)?;
        }
        Ok(Subdomain(lowered))
    }

    /// Checks a stage pattern without filling it (for the settings form).
    pub fn check_stage_pattern(pattern: &str) -> Result<(), SubdomainError> {
        Pattern::parse(pattern, PatternUse::Stage).map(|_| ())
    }

    /// Checks an instance pattern without filling it (for the settings form).
    pub fn check_instance_pattern(pattern: &str) -> Result<(), SubdomainError> {
        Pattern::parse(pattern, PatternUse::Instance).map(|_| ())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Subdomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Subdomain {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Subdomain {
    type Err = SubdomainError;
    fn from_str(s: &str) -> Result<Subdomain, SubdomainError> {
        Subdomain::parse(s)
    }
}

const MAX_LABEL: usize = 63;
const MAX_NAME: usize = 253;
/// Hex digits of SHA-256 used where a name needs a hash: 24 bits, so two distinct tags
/// share one only by a 1-in-16-million accident.
const HASH_LEN: usize = 6;

#[derive(Clone, Copy, PartialEq, Eq)]
enum PatternUse {
    Stage,
    Instance,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    Project,
    Stage,
    Tag,
}

enum Piece {
    Literal(String),
    Value(Placeholder),
}

/// A parsed pattern: labels (split at `.`), each a list of pieces.
struct Pattern {
    text: String,
    labels: Vec<Vec<Piece>>,
}

struct Values {
    project: String,
    stage: String,
    tag: Option<String>,
}

impl Pattern {
    fn parse(text: &str, usage: PatternUse) -> Result<Pattern, SubdomainError> {
        let bad = |reason: String| SubdomainError::BadPattern {
            pattern: text.to_string(),
            reason,
        };
        let mut labels = Vec::new();
        let mut seen = Vec::new();
        for label_text in text.split('.') {
            if label_text.is_empty() {
                return Err(bad(
                    "it has an empty label (a leading, trailing or doubled dot)".into(),
                ));
            }
            let mut pieces = Vec::new();
            let mut rest = label_text;
            while !rest.is_empty() {
                if let Some(after_brace) = rest.strip_prefix('{') {
                    let end = after_brace
                        .find('}')
                        .ok_or_else(|| bad("a `{` is never closed".into()))?;
                    let name = &after_brace[..end];
                    let placeholder = match name {
                        "project" => Placeholder::Project,
                        "stage" => Placeholder::Stage,
                        "tag" => Placeholder::Tag,
                        other => {
                            return Err(SubdomainError::UnknownPlaceholder {
                                pattern: text.to_string(),
                                placeholder: other.to_string(),
                            });
                        }
                    };
                    if placeholder == Placeholder::Tag && usage == PatternUse::Stage {
                        return Err(bad(
                            "{tag} has no value in a stage's domain; use it only in the instance pattern".into(),
                        ));
                    }
                    seen.push(placeholder);
                    pieces.push(Piece::Value(placeholder));
                    rest = &after_brace[end + 1..];
                } else {
                    let end = rest.find('{').unwrap_or(rest.len());
                    let literal = &rest[..end];
                    if let Some(c) = literal
                        .chars()
                        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
                    {
                        return Err(bad(format!("{c:?} cannot be part of a domain name")));
                    }
                    pieces.push(Piece::Literal(literal.to_ascii_lowercase()));
                    rest = &rest[end..];
                }
            }
            labels.push(pieces);
        }
        let mut required = vec![
            (Placeholder::Project, "project"),
            (Placeholder::Stage, "stage"),
        ];
        if usage == PatternUse::Instance {
            required.push((Placeholder::Tag, "tag"));
        }
        for (placeholder, name) in required {
            if !seen.contains(&placeholder) {
                return Err(SubdomainError::MissingPlaceholder {
                    pattern: text.to_string(),
                    placeholder: name,
                });
            }
        }
        Ok(Pattern {
            text: text.to_string(),
            labels,
        })
    }
}

fn build(
    pattern: &Pattern,
    values: &Values,
    base_domain: &str,
) -> Result<Subdomain, SubdomainError> {
    let base = Subdomain::parse(base_domain).map_err(|e| match e {
        SubdomainError::InvalidName { reason, .. } => SubdomainError::InvalidName {
            name: base_domain.to_string(),
            reason: format!("{reason} (the base domain)"),
        },
        other => other,
    })?;
    let mut name = String::new();
    for pieces in &pattern.labels {
        let mut raw = String::new();
        for piece in pieces {
            match piece {
                Piece::Literal(text) => raw.push_str(text),
                Piece::Value(Placeholder::Project) => raw.push_str(&values.project),
                Piece::Value(Placeholder::Stage) => raw.push_str(&values.stage),
                // Parsing refuses {tag} in a stage pattern, so a missing tag cannot happen.
                Piece::Value(Placeholder::Tag) => raw.push_str(values.tag.as_deref().unwrap_or("")),
            }
        }
        let label = sanitize(&raw);
        if label.is_empty() {
            return Err(SubdomainError::BadPattern {
                pattern: pattern.text.clone(),
                reason: "a label has no letters or digits".into(),
            });
        }
        name.push_str(&fit_label(label));
        name.push('.');
    }
    name.push_str(base.as_str());
    if name.len() > MAX_NAME {
        return Err(SubdomainError::TooLong { name });
    }
    Ok(Subdomain(name))
}

/// Lower case, `.`/`_` → `-`, other invalid characters dropped, dash runs collapsed, no
/// dash at either end.
fn sanitize(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let c = match c {
            'a'..='z' | '0'..='9' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            '.' | '_' | '-' => '-',
            _ => continue,
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

fn sanitize_name(what: &'static str, value: &str) -> Result<String, SubdomainError> {
    let clean = sanitize(value);
    if clean.is_empty() {
        return Err(SubdomainError::NothingValid {
            what,
            value: value.to_string(),
        });
    }
    Ok(clean)
}

/// A tag's part of a label: the tag itself when it is already DNS-safe, else its safe form
/// plus a hash of the original, so distinct tags never meet (see the module header).
fn sanitize_tag(tag: &str) -> String {
    let clean = sanitize(tag);
    if clean == tag && !clean.is_empty() {
        clean
    } else if clean.is_empty() {
        short_hash(tag)
    } else {
        format!("{clean}-{}", short_hash(tag))
    }
}

/// Cuts a label to 63 characters, ending it with a hash of the whole label so two long
/// labels that share a prefix still differ.
fn fit_label(label: String) -> String {
    if label.len() <= MAX_LABEL {
        return label;
    }
    let keep = MAX_LABEL - HASH_LEN - 1;
    // The label is ASCII, so any byte index is a character boundary.
    let head = label[..keep].trim_end_matches('-');
    format!("{head}-{}", short_hash(&label))
}

fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(digest)[..HASH_LEN].to_string()
}

fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("it has an empty label".into());
    }
    if label.len() > MAX_LABEL {
        return Err(format!("the label {label:?} is longer than 63 characters"));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!("{c:?} cannot be part of a domain name"));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(format!("the label {label:?} starts or ends with a dash"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STAGE: &str = "stage-{stage}-{project}";
    const INSTANCE: &str = "stage-{stage}-{project}-{tag}";

    /// An independent reading of RFC 1035/1123 host names, so the tests do not trust the
    /// code they test.
    fn is_valid_dns(name: &str) -> bool {
        name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    }

    fn instance(project: &str, stage: &str, tag: &str) -> String {
        Subdomain::for_instance(INSTANCE, "example.com", project, stage, tag)
            .unwrap()
            .into_string()
    }

    #[test]
    fn fills_the_default_patterns() {
        assert_eq!(
            Subdomain::for_stage(STAGE, "example.com", "shop", "dev")
                .unwrap()
                .as_str(),
            "stage-dev-shop.example.com"
        );
        assert_eq!(
            instance("shop", "dev", "dev-4f2a91"),
            "stage-dev-shop-dev-4f2a91.example.com"
        );
    }

    #[test]
    fn makes_values_dns_safe() {
        assert_eq!(
            Subdomain::for_stage(STAGE, "Example.COM.", "My_Shop!", "--Dev--")
                .unwrap()
                .as_str(),
            "stage-dev-my-shop.example.com"
        );
    }

    #[test]
    fn a_tag_that_changes_when_made_safe_carries_a_hash() {
        let dotted = instance("shop", "dev", "v1.2");
        let dashed = instance("shop", "dev", "v1-2");
        assert_eq!(dashed, "stage-dev-shop-v1-2.example.com");
        assert!(dotted.starts_with("stage-dev-shop-v1-2-"), "{dotted}");
        assert_ne!(dotted, dashed);
        assert_ne!(instance("shop", "dev", "V1"), instance("shop", "dev", "v1"));
        assert_ne!(
            instance("shop", "dev", "a_b"),
            instance("shop", "dev", "a.b")
        );
    }

    #[test]
    fn a_tag_with_nothing_usable_is_its_hash() {
        let name = instance("shop", "dev", "___");
        assert!(is_valid_dns(&name), "{name}");
        assert_ne!(name, instance("shop", "dev", "..."));
    }

    #[test]
    fn long_labels_are_cut_with_a_hash() {
        let prefix = "x".repeat(100);
        let a = instance("shop", "dev", &format!("{prefix}a"));
        let b = instance("shop", "dev", &format!("{prefix}b"));
        assert_ne!(a, b);
        for name in [&a, &b] {
            assert!(is_valid_dns(name), "{name}");
            assert_eq!(name.split('.').next().unwrap().len(), 63, "{name}");
        }
    }

    #[test]
    fn patterns_may_span_labels() {
        assert_eq!(
            Subdomain::for_instance(
                "{tag}.{stage}-{project}",
                "example.com",
                "shop",
                "dev",
                "latest"
            )
            .unwrap()
            .as_str(),
            "latest.dev-shop.example.com"
        );
    }

    #[test]
    fn patterns_are_checked() {
        assert!(matches!(
            Subdomain::for_stage("stage-{stage}", "example.com", "shop", "dev"),
            Err(SubdomainError::MissingPlaceholder {
                placeholder: "project",
                ..
            })
        ));
        assert!(matches!(
            Subdomain::for_instance(STAGE, "example.com", "shop", "dev", "v1"),
            Err(SubdomainError::MissingPlaceholder {
                placeholder: "tag",
                ..
            })
        ));
        assert!(matches!(
            Subdomain::for_stage("{stage}-{project}-{branch}", "example.com", "shop", "dev"),
            Err(SubdomainError::UnknownPlaceholder { placeholder, .. }) if placeholder == "branch"
        ));
        assert!(matches!(
            Subdomain::check_stage_pattern(INSTANCE),
            Err(SubdomainError::BadPattern { .. })
        ));
        for bad in [
            "{stage}-{project",
            "{stage}..{project}",
            "{stage}_{project}",
            ".{stage}{project}",
        ] {
            assert!(
                matches!(
                    Subdomain::check_stage_pattern(bad),
                    Err(SubdomainError::BadPattern { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(Subdomain::check_stage_pattern(STAGE), Ok(()));
        assert_eq!(Subdomain::check_instance_pattern(INSTANCE), Ok(()));
    }

    #[test]
    fn names_with_nothing_usable_are_errors() {
        assert!(matches!(
            Subdomain::for_stage(STAGE, "example.com", "ÄÖÜ", "dev"),
            Err(SubdomainError::NothingValid {
                what: "project name",
                ..
            })
        ));
        assert!(matches!(
            Subdomain::for_stage(STAGE, "exa mple.com", "shop", "dev"),
            Err(SubdomainError::InvalidName { .. })
        ));
        assert!(matches!(
            Subdomain::for_stage(STAGE, "", "shop", "dev"),
            Err(SubdomainError::InvalidName { .. })
        ));
    }

    #[test]
    fn the_whole_name_is_at_most_253() {
        let base = [
            "a".repeat(60),
            "b".repeat(60),
            "c".repeat(60),
            "d".repeat(60),
        ]
        .join(".");
        assert!(Subdomain::parse(&base).is_ok());
        assert!(matches!(
            Subdomain::for_instance(INSTANCE, &base, "shop", "dev", &"t".repeat(80)),
            Err(SubdomainError::TooLong { .. })
        ));
    }

    #[test]
    fn parse_checks_complete_names() {
        assert_eq!(
            Subdomain::parse("App.Example.com.").unwrap().as_str(),
            "app.example.com"
        );
        assert_eq!(
            Subdomain::parse("xn--bcher-kva.example").unwrap().as_str(),
            "xn--bcher-kva.example"
        );
        for bad in [
            "",
            "-a.com",
            "a-.com",
            "a..com",
            "a_b.com",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert!(Subdomain::parse(bad).is_err(), "{bad}");
        }
    }

    /// Any text at all, printable ASCII, and tag-like text: most of `any::<String>()` is
    /// outside ASCII and would only exercise the "nothing valid" path.
    fn arbitrary_name() -> impl Strategy<Value = String> {
        prop_oneof![any::<String>(), "[ -~]{0,100}", "[A-Za-z0-9_.-]{1,130}",]
    }

    proptest! {
        #[test]
        fn always_a_valid_dns_name(project in arbitrary_name(), stage in arbitrary_name(), tag in arbitrary_name()) {
            match Subdomain::for_instance(INSTANCE, "example.com", &project, &stage, &tag) {
                Ok(name) => prop_assert!(is_valid_dns(name.as_str()), "{}", name),
                Err(SubdomainError::NothingValid { .. }) => {
                    prop_assert!(sanitize(&project).is_empty() || sanitize(&stage).is_empty());
                }
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
            if let Ok(name) = Subdomain::for_stage(STAGE, "example.com", &project, &stage) {
                prop_assert!(is_valid_dns(name.as_str()), "{}", name);
            }
        }

        #[test]
        fn distinct_tags_never_share_a_name(
            a in "[A-Za-z0-9_.-]{1,128}",
            b in "[A-Za-z0-9_.-]{1,128}",
        ) {
            prop_assume!(a != b);
            prop_assert_ne!(instance("shop", "dev", &a), instance("shop", "dev", &b));
        }

        #[test]
        fn long_tags_with_a_shared_prefix_never_collide(
            prefix in "[a-z0-9-]{100}",
            a in "[a-z0-9._-]{1,20}",
            b in "[a-z0-9._-]{1,20}",
        ) {
            prop_assume!(a != b);
            let x = instance("shop", "dev", &format!("{prefix}{a}"));
            let y = instance("shop", "dev", &format!("{prefix}{b}"));
            prop_assert!(is_valid_dns(&x) && is_valid_dns(&y));
            prop_assert_ne!(x, y);
        }

        #[test]
        fn parse_accepts_what_the_builders_make(project in "[a-zA-Z0-9_.-]{1,40}", tag in arbitrary_name()) {
            if let Ok(name) = Subdomain::for_instance(INSTANCE, "example.com", &project, "dev", &tag) {
                prop_assert_eq!(Subdomain::parse(name.as_str()).unwrap(), name);
            }
        }
    }
}
