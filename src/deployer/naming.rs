//! Container names: unique and readable, `dw-{project}-{stage}-{tag}-{suffix}`, DNS-safe
//! so the name also works as a host name on a Docker network.

/// Longest name we make: one DNS label.
const MAX_LEN: usize = 63;

/// A fresh container name for an instance. The random suffix keeps a redeploy of the same
/// tag (whose old container still runs until the new one is healthy) from clashing.
pub fn container_name(project: &str, stage: &str, tag: &str) -> String {
    let suffix = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let base = dns_safe(&format!("dw-{project}-{stage}-{tag}"));
    let room = MAX_LEN - suffix.len() - 1;
    let base = base[..base.len().min(room)].trim_end_matches('-');
    format!("{base}-{suffix}")
}

/// The Swarm service of a stage, `dw-{project}-{stage}`: one per stage, updated in place.
pub fn service_name(project: &str, stage: &str) -> String {
    let base = dns_safe(&format!("dw-{project}-{stage}"));
    base[..base.len().min(MAX_LEN)]
        .trim_end_matches('-')
        .to_string()
}

/// Lower case; anything but `a-z0-9` becomes a dash; dashes collapsed and trimmed.
fn dns_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn readable_and_unique() {
        let a = container_name("shop", "dev", "dev-4f2a91");
        let b = container_name("shop", "dev", "dev-4f2a91");
        assert!(a.starts_with("dw-shop-dev-dev-4f2a91-"), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn dots_underscores_and_case_become_dashes() {
        assert!(container_name("My_Shop", "prod", "v1.2.3").starts_with("dw-my-shop-prod-v1-2-3-"));
    }

    proptest! {
        #[test]
        fn always_a_valid_dns_label(project in ".{0,80}", stage in ".{0,20}", tag in ".{0,128}") {
            let name = container_name(&project, &stage, &tag);
            prop_assert!(name.len() <= MAX_LEN);
            prop_assert!(name.starts_with("dw"));
            prop_assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
            prop_assert!(!name.ends_with('-') && !name.contains("--"));
        }
    }
}
