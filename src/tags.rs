//! Tag selection: which tags a stage's pattern accepts, which tags never count, and which
//! one new tag of a registry listing is "the newest" to deploy.
//!
//! Pure code: it knows nothing of HTTP, registries or the store. The registry adapters
//! produce [`TagInfo`] listings; the poller keeps a [`SeenTags`] per stage and asks
//! [`select_new`] what to deploy. Patterns are bounded (length, brace nesting and
//! alternatives) because globset panics on some pathological ones, and compiled once per
//! pattern text through [`PatternCache`] (intake and the poller share one).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use globset::{Glob, GlobMatcher};
use semver::{Version, VersionReq};

/// One tag of a repository, as a registry lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    pub name: String,
    /// When the tag was pushed, where the registry says (Gitea does; the OCI tags API
    /// does not).
    pub created: Option<DateTime<Utc>>,
    /// The manifest digest, where known. Listings leave it `None`; a poller that tracks
    /// digests of mutable tags (`latest`, `dev`) fills it with `resolve_digest` for the
    /// matching tags before calling [`select_new`].
    pub digest: Option<String>,
}

impl TagInfo {
    /// A tag with nothing known but its name.
    pub fn new(name: impl Into<String>) -> TagInfo {
        TagInfo {
            name: name.into(),
            created: None,
            digest: None,
        }
    }

    pub fn with_created(mut self, created: DateTime<Utc>) -> TagInfo {
        self.created = Some(created);
        self
    }

    pub fn with_digest(mut self, digest: impl Into<String>) -> TagInfo {
        self.digest = Some(digest.into());
        self
    }
}

/// A stage's tag pattern: a glob over the whole tag (case-sensitive), optionally narrowed
/// by a semver range. Valid by construction: parse once where the pattern enters.
#[derive(Debug, Clone)]
pub struct TagPattern {
    glob: String,
    matcher: GlobMatcher,
    range: Option<(String, VersionReq)>,
}

/// Longest glob or version range accepted, in characters (Docker tags are at most 128).
pub const MAX_PATTERN_LEN: usize = 256;
/// Deepest `{…}` nesting accepted in a glob.
pub const MAX_BRACE_DEPTH: usize = 3;
/// Most alternatives (`,`-separated choices across all `{…}` groups) in a glob.
pub const MAX_ALTERNATIVES: usize = 64;

/// Why a tag pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagPatternError {
    #[error(
        "invalid tag pattern {glob:?}: {reason}; use a glob such as `dev-*`, `v*` or `{{v*,release-*}}`"
    )]
    Glob { glob: String, reason: String },
    #[error(
        "invalid version range {range:?}: {reason}; use comparators such as `>=1.2, <2` or `^1.4`"
    )]
    VersionRange { range: String, reason: String },
}

impl TagPattern {
    /// Parses a glob (`dev-*`, `v*`, `{v*,release-*}`, `[0-9]*`; empty means `*`) and an
    /// optional semver range (`>=1.2, <2`; empty means none). With a range, a tag must
    /// also parse as semver (a leading `v` allowed) and satisfy it; prereleases match
    /// only as the semver crate allows (a comparator that names a prerelease of the same
    /// version).
    pub fn parse(glob: &str, version_range: Option<&str>) -> Result<TagPattern, TagPatternError> {
        let glob = match glob.trim() {
            "" => "*",
            trimmed => trimmed,
        };
        let glob_error = |reason: String| TagPatternError::Glob {
            glob: glob.chars().take(40).collect(),
            reason,
        };
        check_bounds(glob).map_err(glob_error)?;
        let matcher = compile(glob).map_err(glob_error)?;
        let range = match version_range.map(str::trim) {
            None | Some("") => None,
            Some(range) if range.chars().count() > MAX_PATTERN_LEN => {
                return Err(TagPatternError::VersionRange {
                    range: range.chars().take(40).collect(),
                    reason: format!("is longer than {MAX_PATTERN_LEN} characters"),
                });
            }
            Some(range) => {
                let req = VersionReq::parse(range).map_err(|e| TagPatternError::VersionRange {
                    range: range.to_string(),
                    reason: e.to_string(),
                })?;
                Some((range.to_string(), req))
            }
        };
        Ok(TagPattern {
            glob: glob.to_string(),
            matcher,
            range,
        })
    }

    /// Whether `tag` belongs to this pattern. Ignored tags ([`is_ignored_tag`]) never do.
    pub fn matches(&self, tag: &str) -> bool {
        if is_ignored_tag(tag) || !self.matcher.is_match(tag) {
            return false;
        }
        match &self.range {
            None => true,
            Some((_, req)) => parse_version(tag).is_some_and(|v| req.matches(&v)),
        }
    }

    /// The glob as given (`*` when it was empty).
    pub fn glob(&self) -> &str {
        &self.glob
    }

    /// The semver range as given, if any.
    pub fn version_range(&self) -> Option<&str> {
        self.range.as_ref().map(|(text, _)| text.as_str())
    }
}

impl fmt::Display for TagPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version_range() {
            None => f.write_str(&self.glob),
            Some(range) => write!(f, "{} ({range})", self.glob),
        }
    }
}

/// Refuses globs that are too long or nest and branch too much: globset builds one regex
/// from them and panics ("regex compilation shouldn't fail") when it grows too large.
fn check_bounds(glob: &str) -> Result<(), String> {
    if glob.chars().count() > MAX_PATTERN_LEN {
        return Err(format!("is longer than {MAX_PATTERN_LEN} characters"));
    }
    let (mut depth, mut deepest, mut alternatives) = (0usize, 0usize, 0usize);
    for c in glob.chars() {
        match c {
            '{' => {
                depth += 1;
                deepest = deepest.max(depth);
                alternatives += 1;
            }
            '}' => depth = depth.saturating_sub(1),
            ',' if depth > 0 => alternatives += 1,
            _ => {}
        }
    }
    if deepest > MAX_BRACE_DEPTH {
        return Err(format!(
            "nests `{{…}}` {deepest} deep; at most {MAX_BRACE_DEPTH} levels are allowed"
        ));
    }
    if alternatives > MAX_ALTERNATIVES {
        return Err(format!(
            "has {alternatives} alternatives; at most {MAX_ALTERNATIVES} are allowed"
        ));
    }
    Ok(())
}

/// Builds the matcher; a panic inside globset (which the bounds should prevent) becomes an
/// error instead of taking the caller's task down.
fn compile(glob: &str) -> Result<GlobMatcher, String> {
    let built = std::panic::catch_unwind(|| Glob::new(glob).map(|g| g.compile_matcher()));
    match built {
        Ok(Ok(matcher)) => Ok(matcher),
        Ok(Err(e)) => Err(e.kind().to_string()),
        Err(_) => Err("is too complex to compile".to_string()),
    }
}

/// Compiled patterns by their text (glob and version range), so a pattern is compiled
/// once, not once per push or poll. Keyed by text, a stage whose pattern changes simply
/// uses a new entry; entries are dropped wholesale when the cache grows past
/// [`PatternCache::CAPACITY`]. Refused patterns are cached too, with their reason.
#[derive(Default)]
pub struct PatternCache {
    compiled: Mutex<HashMap<(String, Option<String>), CachedPattern>>,
}

type CachedPattern = Result<Arc<TagPattern>, TagPatternError>;

impl PatternCache {
    /// Entries kept before the cache starts over.
    pub const CAPACITY: usize = 4096;

    pub fn new() -> PatternCache {
        PatternCache::default()
    }

    /// The one cache of the process, shared by intake and the poller.
    pub fn shared() -> &'static PatternCache {
        static SHARED: OnceLock<PatternCache> = OnceLock::new();
        SHARED.get_or_init(PatternCache::new)
    }

    /// [`TagPattern::parse`], compiled at most once per distinct text.
    pub fn get(
        &self,
        glob: &str,
        version_range: Option<&str>,
    ) -> Result<Arc<TagPattern>, TagPatternError> {
        let key = (glob.to_string(), version_range.map(str::to_string));
        if let Some(found) = self.lock().get(&key) {
            return found.clone();
        }
        // Compiled outside the lock: a slow pattern does not hold up the others.
        let compiled = TagPattern::parse(glob, version_range).map(Arc::new);
        let mut map = self.lock();
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(key, compiled.clone());
        compiled
    }

    /// How many distinct patterns are compiled (for tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Option<String>), CachedPattern>> {
        // The map holds plain values; a panic elsewhere cannot leave it half-changed.
        self.compiled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Tags that are never deployable: digest-named tags (`sha256-…`, `sha256:…`, as cosign
/// and Gitea create them) and signature/attestation/SBOM tags (`*.sig`, `*.att`, `*.sbom`).
pub fn is_ignored_tag(tag: &str) -> bool {
    tag.starts_with("sha256-")
        || tag.starts_with("sha256:")
        || [".sig", ".att", ".sbom"]
            .iter()
            .any(|suffix| tag.ends_with(suffix))
}

/// The semver version a tag names, with one leading `v` allowed (`v1.2.3`, `1.2.3-rc.1`).
/// Two-part versions (`1.2`) are not semver.
pub fn parse_version(tag: &str) -> Option<Version> {
    Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

/// The tags (and digests, where tracked) a stage saw at its previous poll.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenTags {
    tags: BTreeMap<String, Option<String>>,
}

impl SeenTags {
    pub fn new() -> SeenTags {
        SeenTags::default()
    }

    /// What a stage should remember after a poll: every tag of `listing` that the
    /// pattern matches, with its digest where known. Tags that left the registry are
    /// forgotten, so a tag deleted and pushed again counts as new.
    pub fn from_listing(listing: &[TagInfo], pattern: &TagPattern) -> SeenTags {
        listing
            .iter()
            .filter(|t| pattern.matches(&t.name))
            .map(|t| (t.name.clone(), t.digest.clone()))
            .collect()
    }

    pub fn insert(&mut self, tag: impl Into<String>, digest: Option<String>) {
        self.tags.insert(tag.into(), digest);
    }

    pub fn contains(&self, tag: &str) -> bool {
        self.tags.contains_key(tag)
    }

    /// The digest recorded for `tag`, if the tag was seen with one.
    pub fn digest(&self, tag: &str) -> Option<&str> {
        self.tags.get(tag).and_then(|d| d.as_deref())
    }

    /// Tags in name order, with their digests.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.tags.iter().map(|(t, d)| (t.as_str(), d.as_deref()))
    }

    pub fn len(&self) -> usize {
        self.tags.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }
}

impl<T: Into<String>> FromIterator<(T, Option<String>)> for SeenTags {
    fn from_iter<I: IntoIterator<Item = (T, Option<String>)>>(iter: I) -> SeenTags {
        SeenTags {
            tags: iter.into_iter().map(|(t, d)| (t.into(), d)).collect(),
        }
    }
}

/// The tag [`select_new`] picked, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub tag: String,
    /// The digest the candidate carried, if the poller resolved it.
    pub digest: Option<String>,
    pub order: SelectionOrder,
    pub reason: NewBecause,
}

/// Which rule decided that the selected tag is the newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectionOrder {
    /// Every matching tag is semver: the greatest version.
    Semver,
    /// The registry gave creation times: the most recently created new tag.
    Created,
    /// Neither: the lexicographically greatest tag not seen before.
    Name,
}

/// What makes the selected tag new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewBecause {
    /// The stage had not seen this tag.
    NewTag,
    /// The stage had seen the tag with another digest (a mutable tag was pushed again).
    DigestChanged,
}

/// Picks the one tag of `listing` a stage should deploy, or `None` when nothing is new.
///
/// Only tags the pattern matches count (ignored tags never do). A tag is new when `seen`
/// lacks it, or when both the candidate and `seen` carry a digest and the two differ
/// (digest tracking; a tag seen without a digest is not new just because a digest
/// appears). The newest is then decided by the first rule that applies:
///
/// 1. every matching tag is semver (leading `v` allowed): the greatest version among all
///    matching tags, seen or not, and only if that one is new — the stage never moves to
///    a version lower than one the registry still lists. Equal versions (`v1.0.0` and
///    `1.0.0`) are ordered by name;
/// 2. every new matching tag has a creation time: the most recently created new tag
///    (ties by name);
/// 3. otherwise: the lexicographically greatest new tag. Only determinism is promised
///    here; with names like `dev-4f2a91` there is no better order to know.
///
/// Callers keep `seen` with [`SeenTags::from_listing`] after every poll, so tags that
/// arrived together but were not selected are not deployed later.
pub fn select_new(listing: &[TagInfo], seen: &SeenTags, pattern: &TagPattern) -> Option<Selection> {
    let matching: Vec<&TagInfo> = listing
        .iter()
        .filter(|t| pattern.matches(&t.name))
        .collect();
    let versions: Option<Vec<(Version, &TagInfo)>> = matching
        .iter()
        .map(|t| parse_version(&t.name).map(|v| (v, *t)))
        .collect();

    if let Some(versions) = versions {
        let (_, greatest) = versions
            .into_iter()
            .max_by(|(va, a), (vb, b)| va.cmp(vb).then_with(|| a.name.cmp(&b.name)))?;
        let reason = new_because(greatest, seen)?;
        return Some(selection(greatest, SelectionOrder::Semver, reason));
    }

    let new: Vec<(&TagInfo, NewBecause)> = matching
        .into_iter()
        .filter_map(|t| new_because(t, seen).map(|reason| (t, reason)))
        .collect();
    let (order, by): (SelectionOrder, fn(&TagInfo, &TagInfo) -> Ordering) =
        if new.iter().all(|(t, _)| t.created.is_some()) {
            (SelectionOrder::Created, |a, b| {
                a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name))
            })
        } else {
            (SelectionOrder::Name, |a, b| a.name.cmp(&b.name))
        };
    let (newest, reason) = new.into_iter().max_by(|(a, _), (b, _)| by(a, b))?;
    Some(selection(newest, order, reason))
}

fn new_because(tag: &TagInfo, seen: &SeenTags) -> Option<NewBecause> {
    if !seen.contains(&tag.name) {
        return Some(NewBecause::NewTag);
    }
    match (tag.digest.as_deref(), seen.digest(&tag.name)) {
        (Some(now), Some(before)) if now != before => Some(NewBecause::DigestChanged),
        _ => None,
    }
}

fn selection(tag: &TagInfo, order: SelectionOrder, reason: NewBecause) -> Selection {
    Selection {
        tag: tag.name.clone(),
        digest: tag.digest.clone(),
        order,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn pattern(glob: &str) -> TagPattern {
        TagPattern::parse(glob, None).unwrap()
    }

    fn tags(names: &[&str]) -> Vec<TagInfo> {
        names.iter().map(|n| TagInfo::new(*n)).collect()
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn globs_match_whole_tags_case_sensitively() {
        let dev = pattern("dev-*");
        assert!(dev.matches("dev-4f2a91"));
        assert!(!dev.matches("my-dev-4f2a91"));
        assert!(!dev.matches("DEV-1"));
        let either = pattern("{v*,release-*}");
        assert!(either.matches("v1.2.3") && either.matches("release-7"));
        assert!(!either.matches("dev-1"));
        let digits = pattern("[0-9]*");
        assert!(digits.matches("2024.01") && !digits.matches("latest"));
        assert!(pattern("latest").matches("latest") && !pattern("latest").matches("latest2"));
    }

    #[test]
    fn empty_glob_means_everything_but_ignored_tags() {
        let all = pattern("  ");
        assert_eq!(all.glob(), "*");
        assert!(all.matches("anything") && all.matches("v1.0.0"));
        assert!(!all.matches("sha256-0a1b.sig"));
    }

    #[test]
    fn version_range_narrows_to_semver_tags_in_range() {
        let p = TagPattern::parse("*", Some(">=1.2, <2")).unwrap();
        assert!(p.matches("1.2.0") && p.matches("v1.9.9"));
        assert!(!p.matches("1.1.9") && !p.matches("2.0.0") && !p.matches("latest"));
        assert!(!p.matches("1.5"), "two-part versions are not semver");
        assert_eq!(p.version_range(), Some(">=1.2, <2"));
        assert_eq!(p.to_string(), "* (>=1.2, <2)");
        assert_eq!(
            TagPattern::parse("v*", Some(" ")).unwrap().version_range(),
            None
        );
    }

    #[test]
    fn bad_patterns_say_what_is_wrong() {
        let glob = TagPattern::parse("dev-[", None).unwrap_err();
        assert!(matches!(glob, TagPatternError::Glob { .. }));
        let message = glob.to_string();
        assert!(
            message.contains("\"dev-[\"") && message.contains("unclosed"),
            "{message}"
        );
        let range = TagPattern::parse("*", Some(">=one")).unwrap_err();
        assert!(matches!(range, TagPatternError::VersionRange { .. }));
        assert!(range.to_string().contains("\">=one\""), "{range}");
    }

    #[test]
    fn pathological_patterns_are_refused_with_a_reason_not_a_panic() {
        let nested = format!("{}a{}", "{".repeat(125), "}".repeat(125));
        let many = "?".repeat(240_000);
        let wide = format!("{{{}}}", vec!["a"; 100].join(","));
        for (glob, expected) in [
            (nested.as_str(), "levels are allowed"),
            (many.as_str(), "longer than 256"),
            (wide.as_str(), "alternatives"),
        ] {
            let error = TagPattern::parse(glob, None).unwrap_err();
            let message = error.to_string();
            assert!(message.contains(expected), "{message}");
            assert!(
                message.len() < 400,
                "the reason does not echo the pattern: {message}"
            );
        }
        let long_range = format!(">={}", "1".repeat(300));
        assert!(matches!(
            TagPattern::parse("*", Some(&long_range)),
            Err(TagPatternError::VersionRange { .. })
        ));
        // Within the bounds, nesting still works.
        let ok = TagPattern::parse("{v{1,2}.*,release-{a,b}}", None).unwrap();
        assert!(ok.matches("v2.0") && ok.matches("release-b") && !ok.matches("v3.0"));
    }

    #[test]
    fn the_cache_compiles_each_pattern_once_and_keeps_refusals() {
        let cache = PatternCache::new();
        let a = cache.get("v*", None).unwrap();
        let b = cache.get("v*", None).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the same compiled pattern");
        assert!(cache.get("v*", Some(">=1")).is_ok());
        assert!(cache.get("dev-[", None).is_err());
        assert!(cache.get("dev-[", None).is_err());
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn ignored_tags() {
        for tag in [
            "sha256-abc",
            "sha256-abc.sig",
            "sha256:abc",
            "x.att",
            "v1.sbom",
            "a.sig",
        ] {
            assert!(is_ignored_tag(tag), "{tag}");
        }
        for tag in ["v1.0.0", "latest", "signature", "dev-sha256"] {
            assert!(!is_ignored_tag(tag), "{tag}");
        }
    }

    #[test]
    fn semver_picks_the_greatest_version_with_prereleases_below_releases() {
        let listing = tags(&["v1.0.0", "v1.10.0", "v1.9.0", "v2.0.0-rc.1", "1.2.3"]);
        let chosen = select_new(&listing, &SeenTags::new(), &pattern("*")).unwrap();
        assert_eq!(chosen.tag, "v2.0.0-rc.1");
        assert_eq!(chosen.order, SelectionOrder::Semver);
        let listing = tags(&["v2.0.0-rc.1", "v2.0.0", "v2.0.0-rc.2"]);
        assert_eq!(
            select_new(&listing, &SeenTags::new(), &pattern("*"))
                .unwrap()
                .tag,
            "v2.0.0"
        );
    }

    #[test]
    fn semver_never_moves_below_a_listed_version() {
        let listing = tags(&["v2.0.0", "v1.5.1"]);
        let seen: SeenTags = [("v2.0.0", None)].into_iter().collect();
        assert_eq!(select_new(&listing, &seen, &pattern("*")), None);
    }

    #[test]
    fn creation_time_decides_when_tags_are_not_semver() {
        let listing = vec![
            TagInfo::new("dev-b").with_created(at(10)),
            TagInfo::new("dev-a").with_created(at(20)),
            TagInfo::new("dev-c").with_created(at(30)),
        ];
        let seen: SeenTags = [("dev-c", None)].into_iter().collect();
        let chosen = select_new(&listing, &seen, &pattern("dev-*")).unwrap();
        assert_eq!(chosen.tag, "dev-a");
        assert_eq!(chosen.order, SelectionOrder::Created);
        assert_eq!(chosen.reason, NewBecause::NewTag);
    }

    #[test]
    fn without_times_the_greatest_new_name_wins() {
        let listing = tags(&["dev-1", "dev-3", "dev-2", "latest"]);
        let seen: SeenTags = [("dev-3", None)].into_iter().collect();
        let chosen = select_new(&listing, &seen, &pattern("dev-*")).unwrap();
        assert_eq!(
            (chosen.tag.as_str(), chosen.order),
            ("dev-2", SelectionOrder::Name)
        );
    }

    #[test]
    fn a_changed_digest_makes_a_seen_tag_new() {
        let seen: SeenTags = [("latest", Some("sha256:aaa".to_string()))]
            .into_iter()
            .collect();
        let same = [TagInfo::new("latest").with_digest("sha256:aaa")];
        assert_eq!(select_new(&same, &seen, &pattern("latest")), None);
        let pushed_again = [TagInfo::new("latest").with_digest("sha256:bbb")];
        let chosen = select_new(&pushed_again, &seen, &pattern("latest")).unwrap();
        assert_eq!(chosen.reason, NewBecause::DigestChanged);
        assert_eq!(chosen.digest.as_deref(), Some("sha256:bbb"));
        // Turning digest tracking on later does not count as a change.
        let untracked: SeenTags = [("latest", None)].into_iter().collect();
        assert_eq!(
            select_new(&pushed_again, &untracked, &pattern("latest")),
            None
        );
    }

    #[test]
    fn seen_tags_remember_only_what_matches_now() {
        let listing = vec![
            TagInfo::new("dev-1").with_digest("sha256:1"),
            TagInfo::new("prod-1"),
            TagInfo::new("sha256-1.sig"),
        ];
        let seen = SeenTags::from_listing(&listing, &pattern("*"));
        assert_eq!(
            seen.iter().collect::<Vec<_>>(),
            vec![("dev-1", Some("sha256:1")), ("prod-1", None)]
        );
        assert_eq!(select_new(&listing, &seen, &pattern("*")), None);
    }

    #[test]
    fn nothing_to_select_from() {
        let p = pattern("v*");
        assert_eq!(select_new(&[], &SeenTags::new(), &p), None);
        assert_eq!(
            select_new(&tags(&["dev-1", "latest"]), &SeenTags::new(), &p),
            None
        );
    }

    fn semver_tag() -> impl Strategy<Value = String> {
        (
            0u64..4,
            0u64..12,
            0u64..12,
            prop::option::of(0u64..3),
            any::<bool>(),
        )
            .prop_map(|(major, minor, patch, pre, v)| {
                let pre = pre.map(|n| format!("-rc.{n}")).unwrap_or_default();
                let prefix = if v { "v" } else { "" };
                format!("{prefix}{major}.{minor}.{patch}{pre}")
            })
    }

    fn any_tag() -> impl Strategy<Value = String> {
        prop_oneof![
            semver_tag(),
            "(dev|release|feature)-[0-9a-f]{1,8}",
            "[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,20}",
            "sha256-[0-9a-f]{8}(\\.sig|\\.att)?",
        ]
    }

    /// Pattern-ish text: glob syntax in bulk, nested and unbalanced.
    fn patternish() -> impl Strategy<Value = String> {
        prop_oneof![
            "[{}\\[\\]*?,!a-z0-9.^-]{0,300}",
            (1usize..200, "[a-z?*,]{0,3}").prop_map(|(n, inner)| format!(
                "{}{inner}{}",
                "{".repeat(n),
                "}".repeat(n)
            )),
            (1usize..5000).prop_map(|n| "?".repeat(n)),
            (1usize..300).prop_map(|n| format!("{{{}}}", vec!["*?"; n].join(","))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn parse_never_panics(glob in patternish(), range in proptest::option::of("[<>=^~*., 0-9a-z-]{0,40}")) {
            if let Ok(pattern) = TagPattern::parse(&glob, range.as_deref()) {
                let _ = pattern.matches("v1.2.3");
            }
        }
    }

    proptest! {
        #[test]
        fn semver_selection_is_greatest_of_all_matching(
            names in prop::collection::vec(semver_tag(), 0..60),
            seen_mask in prop::collection::vec(any::<bool>(), 60),
        ) {
            let listing: Vec<TagInfo> = names.iter().map(TagInfo::new).collect();
            let seen: SeenTags = names.iter().zip(&seen_mask)
                .filter(|(_, s)| **s).map(|(n, _)| (n.clone(), None)).collect();
            if let Some(chosen) = select_new(&listing, &seen, &pattern("*")) {
                let chosen_version = parse_version(&chosen.tag).unwrap();
                prop_assert!(!seen.contains(&chosen.tag));
                for name in &names {
                    prop_assert!(chosen_version >= parse_version(name).unwrap());
                }
            } else {
                // Nothing new, or the greatest version was already seen.
                let greatest = names.iter().map(|n| parse_version(n).unwrap()).max();
                if let Some(greatest) = greatest {
                    prop_assert!(names.iter()
                        .filter(|n| parse_version(n).unwrap() == greatest)
                        .any(|n| seen.contains(n)));
                }
            }
        }

        #[test]
        fn selection_is_a_new_matching_tag_and_never_ignored(
            names in prop::collection::vec(any_tag(), 0..80),
            seen_names in prop::collection::vec(any_tag(), 0..20),
            glob in prop::sample::select(vec!["*", "v*", "dev-*", "{v*,release-*}", "[0-9]*", "sha256-*"]),
        ) {
            let p = pattern(glob);
            let listing: Vec<TagInfo> = names.iter().map(TagInfo::new).collect();
            let seen: SeenTags = seen_names.into_iter().map(|n| (n, None)).collect();
            match select_new(&listing, &seen, &p) {
                Some(chosen) => {
                    prop_assert!(names.contains(&chosen.tag));
                    prop_assert!(p.matches(&chosen.tag));
                    prop_assert!(!is_ignored_tag(&chosen.tag));
                    prop_assert!(!seen.contains(&chosen.tag));
                }
                None => {
                    // With no semver order in play, every matching tag must be seen.
                    let matching: Vec<&String> = names.iter().filter(|n| p.matches(n)).collect();
                    if !matching.iter().all(|n| parse_version(n).is_some()) {
                        prop_assert!(matching.iter().all(|n| seen.contains(n)));
                    }
                }
            }
        }

        #[test]
        fn a_repeated_poll_selects_nothing(names in prop::collection::vec(any_tag(), 0..80)) {
            let listing: Vec<TagInfo> = names.iter().map(TagInfo::new).collect();
            let p = pattern("*");
            let seen = SeenTags::from_listing(&listing, &p);
            prop_assert_eq!(select_new(&listing, &seen, &p), None);
        }

        #[test]
        fn glob_prefix_matches_exactly_the_prefixed_tags(tag in "[a-z0-9.-]{0,12}") {
            let p = pattern("dev-*");
            prop_assert_eq!(p.matches(&tag), tag.starts_with("dev-") && !is_ignored_tag(&tag));
        }

        #[test]
        fn range_matches_are_semver_within_range(tag in any_tag()) {
            let p = TagPattern::parse("*", Some(">=1.2, <3")).unwrap();
            if p.matches(&tag) {
                let v = parse_version(&tag).unwrap();
                prop_assert!(v >= Version::new(1, 2, 0) && v < Version::new(3, 0, 0));
            }
        }

        #[test]
        fn selection_does_not_depend_on_listing_order(
            names in prop::collection::vec(any_tag(), 0..40),
            times in prop::collection::vec(prop::option::of(0i64..5), 40),
            shuffle_seed in any::<u64>(),
        ) {
            let listing: Vec<TagInfo> = names.iter().zip(&times)
                .map(|(n, t)| TagInfo { name: n.clone(), created: t.map(at), digest: None })
                .collect();
            // Duplicate names with different times would make the order matter; a
            // registry lists each tag once.
            let mut unique = listing.clone();
            unique.sort_by(|a, b| a.name.cmp(&b.name));
            unique.dedup_by(|a, b| a.name == b.name);
            let mut shuffled = unique.clone();
            let n = shuffled.len().max(1) as u64;
            shuffled.rotate_left((shuffle_seed % n) as usize);
            shuffled.reverse();
            let p = pattern("*");
            prop_assert_eq!(
                select_new(&unique, &SeenTags::new(), &p),
                select_new(&shuffled, &SeenTags::new(), &p)
            );
        }
    }

    #[test]
    fn thousands_of_tags() {
        let mut listing: Vec<TagInfo> = (0..5000)
            .map(|i| TagInfo::new(format!("v1.{}.{}", i / 100, i % 100)))
            .collect();
        listing.extend((0..3000).map(|i| TagInfo::new(format!("dev-{i:05}"))));
        let seen = SeenTags::from_listing(&listing[..4999], &pattern("v*"));
        let chosen = select_new(&listing, &seen, &pattern("v*")).unwrap();
        assert_eq!(chosen.tag, "v1.49.99");
        let chosen = select_new(&listing, &SeenTags::new(), &pattern("*")).unwrap();
        assert_eq!(
            (chosen.tag.as_str(), chosen.order),
            ("v1.9.99", SelectionOrder::Name)
        );
        let all_semver = pattern("*");
        let semver_only = TagPattern::parse(all_semver.glob(), Some(">=1.0.0")).unwrap();
        assert_eq!(
            select_new(&listing, &SeenTags::new(), &semver_only)
                .unwrap()
                .tag,
            "v1.49.99"
        );
    }
}
