//! The OpenAPI 3.1 document, served at `/v1/openapi.json`. Each handler carries its own
//! `#[utoipa::path]` and is registered through `utoipa_axum::routes!`, so the document is built
//! from the same list as the router: a route cannot exist undocumented.
use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::{
    IntoResponses, Modify, OpenApi, ToSchema,
    openapi::{
        RefOr, ResponseBuilder,
        content::Content,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Nightshift",
        description = "Background jobs for the finance backend: enqueue jobs and read their outcome, \
            cashflow projections, reminders and webhooks, transactional e-mail, schedules and keys. \
            Every /v1 route takes a bearer JWT (HS256) whose scopes the route names.",
        license(name = "MIT")
    ),
    components(schemas(ErrorBody, ErrorDetail, nightshift_catalog::cashflow::ProjectPayload)),
    modifiers(&BearerAuth),
    tags(
        (name = "jobs", description = "Enqueue jobs and read their outcome"),
        (name = "batches", description = "Jobs counted together, with callbacks once all have finished"),
        (name = "finance", description = "A user's finance data: profile, accounts, recurring items, one-off transactions"),
        (name = "cashflow", description = "Cashflow projections"),
        (name = "reminders", description = "Reminders and webhook endpoints"),
        (name = "emails", description = "Transactional e-mail"),
        (name = "admin", description = "Signing keys and schedules (the `admin` scope)"),
        (name = "health", description = "Liveness, readiness and metrics")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every error: a status, and this body naming the field at fault when there is one.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// unauthorized, forbidden, bad_request, invalid, too_large, not_found, conflict,
    /// rate_limited, unavailable or internal.
    pub code: String,
    pub message: String,
    /// The request field, header or path parameter at fault (400, 413, 422).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A job accepted into its queue.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// The job id (a UUID): read its outcome at `GET /v1/jobs/{id}`.
    pub id: String,
    /// Present (true) when an earlier job under the request's `dedupe` key took it in: `id`
    /// is that job's.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deduplicated: bool,
}

/// The errors any authenticated route may answer, each with an [`ErrorBody`].
pub struct Errors;

impl IntoResponses for Errors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        [
            ("400", "The body is not JSON, or a header is malformed"),
            ("401", "No token, or a token that is invalid or expired"),
            ("403", "The token lacks the route's scope"),
            ("404", "Not found, or not the caller's"),
            ("409", "Conflicts with the current state"),
            ("413", "The body is too large"),
            ("422", "A field, header or path parameter is invalid; `field` names it"),
            ("429", "Rate limited; see Retry-After"),
            ("503", "Redis or PostgreSQL is unavailable; retry later"),
        ]
        .into_iter()
        .map(|(code, description)| {
            let response = ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody")))),
                )
                .build();
            (code.to_string(), RefOr::T(response))
        })
        .collect()
    }
}

/// Names the catalog's job kinds (the `JobKind` schema) and e-mail templates (an enum in
/// `EmailRequest`): both lists live in code elsewhere, and the document follows them.
pub fn name_catalog_values(doc: &mut utoipa::openapi::OpenApi) {
    use nightshift_catalog::{Exposure, catalog};
    use utoipa::openapi::{ObjectBuilder, Schema, Type};
    // The kinds clients may enqueue: operator kinds are for admins, internal ones never come
    // through the API, and diagnostic ones exist only in test set-ups.
    let kinds: Vec<&str> = catalog()
        .values()
        .filter(|s| s.exposure == Exposure::Client && !s.diagnostic)
        .map(|s| s.name)
        .collect();
    let templates: Vec<&str> = nightshift_catalog::email::templates::TEMPLATES
        .iter()
        .map(|t| t.name)
        .collect();
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let strings = |values: Vec<&str>, description: &str| -> Schema {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values))
            .description(Some(description))
            .into()
    };
    // `kind` itself stays a string: an admin token may name an operator kind, and a generated
    // client must be able to send one.
    components.schemas.insert(
        "JobKind".into(),
        RefOr::T(strings(
            kinds,
            "The kinds a client token may enqueue. Operator kinds (with the `admin` scope) are accepted too but not listed.",
        )),
    );
    if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut("EmailRequest") {
        object.properties.insert(
            "template".into(),
            RefOr::T(strings(templates, "The template; each names the variables it needs.")),
        );
    }
}

/// Gives every operation a unique id, as OpenAPI requires and client generators rely on (a
/// method or function is named after it). Handlers are named for what they do within their
/// module (`accounts::list`, `recurring::list`): a name used more than once gets the resource
/// it acts on, the path's last literal segment (`list_accounts`, `list_recurring`).
pub fn unique_operation_ids(doc: &mut utoipa::openapi::OpenApi) {
    use std::collections::HashMap;
    use utoipa::openapi::path::Operation;
    fn operations(doc: &mut utoipa::openapi::OpenApi) -> Vec<(String, &mut Operation)> {
        doc.paths
            .paths
            .iter_mut()
            .flat_map(|(path, item)| {
                let resource = path
                    .split('/')
                    .rfind(|s| !s.is_empty() && !s.starts_with('{'))
                    .unwrap_or_default()
                    .replace('-', "_");
                [
                    &mut item.get,
                    &mut item.put,
                    &mut item.post,
                    &mut item.delete,
                    &mut item.patch,
                ]
                .into_iter()
                .flatten()
                .map(move |op| (resource.clone(), op))
            })
            .collect()
    }
    let mut uses: HashMap<String, usize> = HashMap::new();
    for (_, op) in operations(doc) {
        *uses.entry(op.operation_id.clone().unwrap_or_default()).or_default() += 1;
    }
    for (resource, op) in operations(doc) {
        let id = op.operation_id.clone().unwrap_or_default();
        if uses[&id] > 1 {
            op.operation_id = Some(format!("{id}_{resource}"));
        }
    }
}
