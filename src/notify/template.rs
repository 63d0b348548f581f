//! Titles and bodies from templates (minijinja: a small Jinja dialect that cannot reach
//! files or the network). Every target has a default; a target may bring its own. Output
//! is plain text; each channel escapes or encodes it for its own format.

use minijinja::{AutoEscape, Environment, UndefinedBehavior, context};

use super::message::{Notification, cut};

/// The default title template.
pub const DEFAULT_TITLE: &str =
    "{{ project }}/{{ stage }}: {{ outcome }}{% if tag %} {{ tag }}{% endif %}";

/// The default body template.
pub const DEFAULT_BODY: &str = "\
{{ project }}/{{ stage }} {{ outcome }}{% if tag %} {{ tag }}{% endif %}{% if duration_ms %} in {{ duration }}{% endif %}.
{% if failed_step %}Failed step: {{ failed_step }}
{% endif %}{% if reason %}Reason: {{ reason }}
{% endif %}{% if consecutive_failures %}{{ consecutive_failures }} failed polls in a row.
{% endif %}{% if repeats %}The same failure happened {{ repeats }} more times since the last message.
{% endif %}{% if url %}{{ url }}
{% endif %}{% if deploy_url %}Deploy: {{ deploy_url }}
{% endif %}{% if log %}Last log lines:
{% for line in log %}{{ line }}
{% endfor %}{% endif %}";

/// Rendered text is cut to this many characters (channels cut further to their limits).
pub const MAX_RENDERED_CHARS: usize = 8_000;
/// Template sources longer than this are refused.
pub const MAX_TEMPLATE_CHARS: usize = 4_000;
/// A budget of template instructions, so a template cannot loop for long.
const FUEL: u64 = 50_000;

/// A title and body ready to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub title: String,
    pub body: String,
}

/// Checks that `source` is a template that renders; the error says where it is wrong.
pub fn validate(source: &str) -> Result<(), String> {
    if source.chars().count() > MAX_TEMPLATE_CHARS {
        return Err(format!(
            "a template may have at most {MAX_TEMPLATE_CHARS} characters"
        ));
    }
    render_one(source, &Notification::sample(super::EventKind::Rollback)).map(|_| ())
}

/// Renders a title and body for `notification` with the given templates or the defaults.
pub fn render(
    title: Option<&str>,
    body: Option<&str>,
    notification: &Notification,
) -> Result<Rendered, String> {
    Ok(Rendered {
        title: render_one(title.unwrap_or(DEFAULT_TITLE), notification)?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        body: render_one(body.unwrap_or(DEFAULT_BODY), notification)?,
    })
}

fn render_one(source: &str, n: &Notification) -> Result<String, String> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(FUEL));
    let template = env.template_from_str(source).map_err(|e| describe(&e))?;
    let text = template
        .render(context! {
            event => n.event.as_str(),
            outcome => n.outcome(),
            project => &n.project,
            stage => &n.stage,
            tag => &n.tag,
            digest => &n.digest,
            status => &n.status,
            reason => &n.error,
            failed_step => &n.failed_step,
            deploy_id => n.deploy_id,
            deploy_url => &n.deploy_url,
            duration_ms => n.duration_ms,
            duration => format!("{:.1} s", n.duration_ms as f64 / 1000.0),
            url => n.urls.first(),
            urls => &n.urls,
            log => &n.log_tail,
            consecutive_failures => n.consecutive_failures,
            repeats => n.repeats,
        })
        .map_err(|e| describe(&e))?;
    Ok(cut(text.trim(), MAX_RENDERED_CHARS))
}

fn describe(error: &minijinja::Error) -> String {
    let mut text = format!(
        "template error: {}",
        error.detail().unwrap_or("invalid template")
    );
    if let Some(line) = error.line() {
        text.push_str(&format!(" (line {line})"));
    }
    text.push_str(&format!(" [{:?}]", error.kind()));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::EventKind;

    #[test]
    fn default_rollback_message_names_step_reason_and_log() {
        let r = render(None, None, &Notification::sample(EventKind::Rollback)).unwrap();
        assert_eq!(r.title, "shop/dev: rolled back dev-4f2a91");
        assert_eq!(
            r.body,
            "shop/dev rolled back dev-4f2a91 in 12.3 s.\nFailed step: health_check\n\
             Reason: never became healthy: GET /healthz answered 503\n\
             https://dev-shop.example.test\nDeploy: https://deploy.example.test/deploys/42\n\
             Last log lines:\nlistening on :8080\nerror: cannot reach database at db:5432"
        );
    }

    #[test]
    fn default_success_message_is_short() {
        let r = render(None, None, &Notification::sample(EventKind::Success)).unwrap();
        assert_eq!(
            r.body,
            "shop/dev deployed dev-4f2a91 in 12.3 s.\nhttps://dev-shop.example.test\n\
             Deploy: https://deploy.example.test/deploys/42"
        );
    }

    #[test]
    fn own_templates_see_the_fields() {
        let r = render(
            Some("{{ event|upper }} {{ project }}"),
            Some("{{ tag }} took {{ duration }}{% for l in log %}|{{ l }}{% endfor %}"),
            &Notification::sample(EventKind::Failure),
        )
        .unwrap();
        assert_eq!(r.title, "FAILURE shop");
        assert_eq!(
            r.body,
            "dev-4f2a91 took 12.3 s|listening on :8080|error: cannot reach database at db:5432"
        );
    }

    #[test]
    fn bad_templates_are_refused_with_a_reason() {
        let e = validate("{% if %}").unwrap_err();
        assert!(e.starts_with("template error"), "{e}");
        let e = validate(
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        )
        .unwrap_err();
        assert!(e.contains("Fuel") || e.contains("fuel"), "{e}");
        assert!(validate(&"x".repeat(MAX_TEMPLATE_CHARS + 1)).is_err());
    }
}
