//! The OpenAPI document's frame: title, version, the two ways to authenticate, and the
//! default that every operation needs one of them. The paths and schemas come from the
//! handlers' `#[utoipa::path]` annotations as [`super::router`] mounts them, so the spec
//! and the routes cannot drift apart.

use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    Content, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Response, ResponseBuilder,
    SecurityRequirement,
};

use super::auth::SESSION_COOKIE;

/// Names of the security schemes in the document.
pub const BEARER: &str = "bearer";
pub const COOKIE: &str = "session_cookie";

/// The document before any path is added.
pub fn base() -> OpenApi {
    let mut api = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("docker-watcher")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Continuous deployment for one Docker host. Sign in with \
                     `POST /api/auth/login`, then send `Authorization: Bearer <token>` \
                     (scripts) or the session cookie with `X-CSRF-Token` on state-changing \
                     requests (the UI). Errors are `{\"error\": \"…\"}`; a validation error \
                     adds `fields` with a reason per bad field.",
                ))
                .build(),
        )
        .build();
    api.security = Some(vec![
        SecurityRequirement::new(BEARER, Vec::<String>::new()),
        SecurityRequirement::new(COOKIE, Vec::<String>::new()),
    ]);
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "a session token from login, or an API token from /api/auth/tokens",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        COOKIE,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            SESSION_COOKIE,
            "the session cookie set by login; state-changing requests also need X-CSRF-Token",
        ))),
    );
    api
}

/// Adds to every operation the error answers the layers and extractors give, so handlers
/// declare only their own: 400 (a body, query or path id that cannot be read), 401 and
/// 403 (routes that need sign-in: none, or a token without the scope), 413, 415 and 422
/// (operations with a body), 422 (operations with query parameters) and 429 (rate limits).
/// Each is the JSON `ErrorBody`. An answer a handler declares is left as it is.
pub fn add_common_errors(api: &mut OpenApi, public: &[(&str, &str)]) {
    for (path, item) in api.paths.paths.iter_mut() {
        let operations = [
            ("get", item.get.as_mut()),
            ("put", item.put.as_mut()),
            ("post", item.post.as_mut()),
            ("delete", item.delete.as_mut()),
            ("patch", item.patch.as_mut()),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else {
                continue;
            };
            let signed_in = !public.contains(&(method, path.as_str()));
            let has_body = operation.request_body.is_some();
            let has_query =
                operation.parameters.iter().flatten().any(
                    |p| matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Query)),
                );
            let mut add = |status: &str, description: &str| {
                operation
                    .responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| RefOr::T(error_response(description)));
            };
            add(
                "400",
                "the request cannot be read (a path id, the query or the body)",
            );
            add(
                "429",
                "too many requests; `Retry-After` says when to try again",
            );
            if signed_in {
                add(
                    "401",
                    "not signed in, or the session or token is no longer valid",
                );
                add("403", "signed in, but not allowed to do this");
            }
            if has_body {
                add("413", "the body is too large");
                add("415", "the body is not `application/json`");
            }
            if has_body || has_query {
                add("422", "a field is wrong; `fields` says which and why");
            }
        }
    }
}

pub(super) fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build()
}

/// What the API enforces on a request field, as JSON Schema can say it.
enum Rule {
    /// A DNS-safe name (`validate::dns_name`).
    Name,
    /// One of these words (a nullable field also takes `null`).
    OneOf(&'static [&'static str]),
    /// A whole number in this range.
    Range(i64, i64),
    /// A string matching this pattern, at most this long.
    Pattern(&'static str, usize),
}

/// Request fields and their rules, by schema and property. The API's own checks (in the
/// handlers and `validate`) stay the truth; this makes the document say the same, so a
/// generated client or form can check before sending. Rules JSON Schema cannot state
/// (cron expressions, tag globs, semver ranges) stay in the descriptions.
const RULES: &[(&[&str], &str, Rule)] = &[
    (
        &[
            "NewTokenBody",
            "NewNotificationBody",
            "NotificationChanges",
            "NewProjectBody",
            "ProjectChanges",
            "NewStageBody",
            "StageChanges",
            "NewRegistryBody",
            "RegistryChanges",
        ],
        "name",
        Rule::Name,
    ),
    (
        &["NewNotificationBody", "NotificationChanges"],
        "kind",
        Rule::OneOf(&[
            "webhook", "slack", "discord", "ntfy", "telegram", "gotify", "email", "matrix",
            "pushover", "teams", "apprise",
        ]),
    ),
    (
        &["NewRegistryBody", "RegistryChanges"],
        "kind",
        Rule::OneOf(&["oci", "gitea", "dockerhub", "ghcr"]),
    ),
    (
        &[
            "NewProjectBody",
            "ProjectChanges",
            "NewStageBody",
            "StageChanges",
        ],
        "container_port",
        Rule::Range(1, 65_535),
    ),
    (
        &["NewStageBody", "StageChanges"],
        "max_instances",
        Rule::Range(1, 100),
    ),
    // The release workflow's stage fields.
    (
        &["NewStageBody", "StageChanges"],
        "policy",
        Rule::OneOf(&["any", "forward", "patch", "minor"]),
    ),
    (
        &["NewStageBody", "StageChanges"],
        "approvals_required",
        Rule::Range(0, 10),
    ),
    (
        &["NewStageBody", "StageChanges"],
        "approval_timeout",
        Rule::Range(1, 31_536_000),
    ),
    (
        &["NewStageBody", "StageChanges"],
        "promote_from",
        Rule::Name,
    ),
    (
        &["NewProjectBody", "ProjectChanges", "SettingsChanges"],
        "health_retries",
        Rule::Range(1, 100),
    ),
    (
        &["NewProjectBody", "ProjectChanges", "SettingsChanges"],
        "health_interval_ms",
        Rule::Range(100, 3_600_000),
    ),
    (
        &["NewProjectBody", "ProjectChanges", "SettingsChanges"],
        "health_timeout_ms",
        Rule::Range(100, 300_000),
    ),
    (
        &["NewProjectBody", "ProjectChanges", "SettingsChanges"],
        "health_start_period_ms",
        Rule::Range(0, 3_600_000),
    ),
    (
        &["SettingsChanges"],
        "poll_interval_secs",
        Rule::Range(10, 86_400),
    ),
    (
        &[
            "NewProjectBody",
            "ProjectChanges",
            "NewStageBody",
            "StageChanges",
        ],
        "health_path",
        Rule::Pattern("^/[!-~]*$", super::validate::HTTP_PATH_MAX),
    ),
    (
        &["NewProjectBody", "ProjectChanges"],
        "image",
        Rule::Pattern(IMAGE_PATTERN, crate::image_ref::NAME_MAX_LEN),
    ),
    (
        &["DeployTagBody"],
        "tag",
        Rule::Pattern("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", 128),
    ),
    (
        &["EnvVarBody"],
        "name",
        Rule::Pattern("^[A-Za-z_][A-Za-z0-9_]*$", super::validate::ENV_NAME_MAX),
    ),
    // A stage's target (issue 17) and a swarm service's scale.
    (
        &["TargetBody"],
        "kind",
        Rule::OneOf(&["container", "swarm"]),
    ),
    (&["TargetBody"], "replicas", Rule::Range(1, 100)),
    (&["TargetBody"], "update_parallelism", Rule::Range(0, 100)),
    (
        &["TargetBody"],
        "update_delay_ms",
        Rule::Range(0, 3_600_000),
    ),
    (&["ScaleBody"], "replicas", Rule::Range(0, 100)),
    (
        &["NewNotificationBody", "NotificationChanges"],
        "url",
        Rule::Pattern("^[A-Za-z][A-Za-z0-9+.-]*://\\S+$", super::validate::URL_MAX),
    ),
];

/// An image reference without tag or digest, as `ImageRef` takes it (Docker's grammar):
/// an optional registry host — dot-separated labels of letters, digits and inner dashes,
/// or a bracketed IPv6 address, either with a port — then lowercase path components
/// separated by `.`, `_`, `__` or dashes. It may be wider than the parser (a first
/// component read as a path, not a host, is refused upper-case: a 422), never narrower:
/// a test feeds the parser's accepted inputs to it.
pub(super) const IMAGE_PATTERN: &str = "^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?\
    (?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\\[[0-9A-Fa-f:]+\\])(?::[0-9]{1,5})?/)?\
    [a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$";

/// A DNS-safe name: lowercase letters, digits and dashes, no dash at either end.
const NAME_PATTERN: &str = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$";

/// Writes [`RULES`], and the settings' limits (`settings::LIMIT_RANGES`), into the
/// document's schemas.
pub fn add_field_rules(api: &mut OpenApi) {
    use utoipa::openapi::schema::{Schema, SchemaType, Type};
    let Some(components) = api.components.as_mut() else {
        return;
    };
    let limits: Vec<(&[&str], &str, Rule)> = super::settings::LIMIT_RANGES
        .iter()
        .map(|(field, min, max)| {
            let settings: &[&str] = &["SettingsChanges"];
            (settings, *field, Rule::Range(*min as i64, *max as i64))
        })
        .collect();
    for (schemas, property, rule) in RULES.iter().chain(limits.iter()) {
        for name in *schemas {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(*name) else {
                continue;
            };
            let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut(*property) else {
                continue;
            };
            let nullable = matches!(&field.schema_type, SchemaType::Array(types) if types.contains(&Type::Null));
            match rule {
                Rule::Name => {
                    field.pattern = Some(NAME_PATTERN.into());
                    field.min_length = Some(1);
                    field.max_length = Some(super::validate::NAME_MAX);
                }
                Rule::OneOf(words) => {
                    let mut values: Vec<serde_json::Value> =
                        words.iter().map(|w| serde_json::Value::from(*w)).collect();
                    if nullable {
                        values.push(serde_json::Value::Null);
                    }
                    field.enum_values = Some(values);
                }
                Rule::Range(min, max) => {
                    field.minimum = Some(utoipa::Number::Int(*min as isize));
                    field.maximum = Some(utoipa::Number::Int(*max as isize));
                }
                Rule::Pattern(pattern, max) => {
                    field.pattern = Some((*pattern).into());
                    field.max_length = Some(*max);
                }
            }
        }
    }
}

/// The query parameters' ranges: page sizes of the lists, the backlog of a container's
/// log. The ends are the handlers' own constants.
pub fn add_query_rules(api: &mut OpenApi) {
    use utoipa::openapi::schema::Schema;
    let ranges = [
        ("/api/deploys", "limit", 1, super::deploys::PAGE_MAX),
        ("/api/audit", "limit", 1, super::audit::PAGE_MAX),
        (
            "/api/webhook-events",
            "limit",
            1,
            super::system::EVENTS_PAGE_MAX,
        ),
        (
            "/api/instances/{id}/logs",
            "tail",
            0,
            super::instances::LOG_TAIL_MAX,
        ),
    ];
    for (path, name, min, max) in ranges {
        let Some(item) = api.paths.paths.get_mut(path) else {
            continue;
        };
        let Some(operation) = item.get.as_mut() else {
            continue;
        };
        for parameter in operation.parameters.iter_mut().flatten() {
            if let RefOr::T(parameter) = parameter
                && parameter.name == name
                && let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut()
            {
                schema.minimum = Some(utoipa::Number::Int(min));
                schema.maximum = Some(utoipa::Number::Int(max as isize));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn document() -> Value {
        serde_json::to_value(crate::api::openapi()).unwrap()
    }

    fn parameter<'a>(doc: &'a Value, path: &str, name: &str) -> &'a Value {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} has parameters"))
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} has {name}"))
    }

    #[test]
    fn query_parameters_are_optional_query_parameters() {
        let doc = document();
        for (path, name) in [
            ("/api/deploys", "project_id"),
            ("/api/deploys", "limit"),
            ("/api/deploys/{id}/logs", "after"),
            ("/api/projects/{id}/tags", "stage_id"),
            ("/api/webhook-events", "limit"),
        ] {
            let p = parameter(&doc, path, name);
            assert_eq!(p["in"], "query", "{path} {name}: {p}");
            assert_ne!(p["required"], true, "{path} {name}: {p}");
        }
        // Every bounded query parameter states its bounds, from the handler's constants.
        for (path, name, min, max) in [
            ("/api/deploys", "limit", 1, crate::api::deploys::PAGE_MAX),
            ("/api/audit", "limit", 1, crate::api::audit::PAGE_MAX),
            (
                "/api/webhook-events",
                "limit",
                1,
                crate::api::system::EVENTS_PAGE_MAX,
            ),
            (
                "/api/instances/{id}/logs",
                "tail",
                0,
                crate::api::instances::LOG_TAIL_MAX,
            ),
        ] {
            let schema = &parameter(&doc, path, name)["schema"];
            assert_eq!(
                (&schema["minimum"], &schema["maximum"]),
                (&Value::from(min), &Value::from(max)),
                "{path} {name}"
            );
        }
        assert_eq!(
            parameter(&doc, "/api/deploys/{id}/logs", "id")["in"],
            "path"
        );
    }

    #[test]
    fn every_operation_declares_the_common_error_answers() {
        let doc = document();
        let post_projects = &doc["paths"]["/api/projects"]["post"]["responses"];
        for status in ["400", "401", "403", "413", "415", "422", "429"] {
            assert_eq!(
                post_projects[status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{status}"
            );
        }
        let login = &doc["paths"]["/api/auth/login"]["post"]["responses"];
        assert!(
            login.get("403").is_none(),
            "login needs no sign-in: {login}"
        );
        assert!(login.get("429").is_some(), "{login}");
        let get_project = &doc["paths"]["/api/projects/{id}"]["get"]["responses"];
        assert!(get_project.get("400").is_some() && get_project.get("413").is_none());
    }

    /// Every image the API takes matches the document's pattern (the other way round, a
    /// pattern wider than the parser, only costs a 422). Docker's grammar allows more than
    /// the first pattern did: `a__b`, `a--b`, upper-case hosts, IPv6 hosts, 5-digit ports.
    #[test]
    fn every_image_the_api_takes_matches_the_documented_pattern() {
        use proptest::prelude::*;
        let pattern = regex::Regex::new(super::IMAGE_PATTERN).unwrap();
        let accepted = |input: &str| crate::api::projects::normalise_image(input).is_ok();
        for input in [
            "nginx",
            "acme/shop",
            "a__b/c--d",
            "Registry.Example.com/app",
            "[::1]:5000/app",
            "registry.example.com:50000/team/app",
            "localhost/app.v2",
        ] {
            assert!(accepted(input), "{input}");
            assert!(
                pattern.is_match(input),
                "{input} is taken but the pattern refuses it"
            );
        }
        // The length is the input's, as the document's maxLength counts it (the parser
        // counts the normalised name, which `index.docker.io/` makes shorter).
        let long = format!("index.docker.io/acme/{}", "a".repeat(236));
        assert!(
            long.len() > 255 && !accepted(&long),
            "{} characters taken",
            long.len()
        );
        proptest!(ProptestConfig::with_cases(20_000), |(input in "[a-zA-Z0-9:/@.\\[\\]_-]{1,40}")| {
            if accepted(&input) {
                prop_assert!(pattern.is_match(&input), "{} is taken but the pattern refuses it", input);
            }
        });
    }

    #[test]
    fn names_carry_the_pattern_and_length_the_api_enforces() {
        let doc = document();
        for schema in [
            "NewProjectBody",
            "NewStageBody",
            "NewRegistryBody",
            "NewTokenBody",
        ] {
            let name = &doc["components"]["schemas"][schema]["properties"]["name"];
            assert_eq!(name["maxLength"], 63, "{schema}: {name}");
            assert_eq!(name["minLength"], 1, "{schema}: {name}");
            let pattern = name["pattern"].as_str().unwrap();
            assert_eq!(pattern, super::NAME_PATTERN);
        }
        let kind = &doc["components"]["schemas"]["RegistryChanges"]["properties"]["kind"];
        assert!(
            kind["enum"].as_array().unwrap().contains(&Value::Null),
            "{kind}"
        );
        let port = &doc["components"]["schemas"]["NewProjectBody"]["properties"]["container_port"];
        assert_eq!(
            (port["minimum"].clone(), port["maximum"].clone()),
            (1.into(), 65535.into())
        );
    }
}
