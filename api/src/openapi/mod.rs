//! The OpenAPI document of the API, generated from the contract types and the handlers'
//! annotations, served at `GET /openapi.json` and committed as `api/openapi.json`.
//!
//! Error responses are not written by hand on each handler: every route module lists the
//! codes its handlers can answer with, and [`ErrorResponses`] turns those lists into one
//! response per status whose schema only admits those codes. A schema checker (Schemathesis)
//! then catches a handler answering with a code its route does not declare.

use crate::error::ErrorCode;
use crate::routes::predict::GET_PREDICTION;
use crate::routes::{admin, datadrift, health, ingest, monitors, predict};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use drift_contract::ErrorBody;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Ref, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, OpenApi as Document};
use utoipa::{Modify, OpenApi};

pub mod examples;

/// The command that rewrites `api/openapi.json`, for the test that finds it stale.
pub const REGENERATE: &str = "cargo run -q -p drift-api --example openapi > api/openapi.json";

/// An operation's tag is the name of its handler's module as listed in `paths` (utoipa's
/// default: `admin::put_monitor` is tagged `admin`), unless its attribute names another.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "drift-api",
        description = "Real-time data-drift monitor: ingest feature rows, read per-feature \
            drift results, serve the demo model's predictions, manage monitors. Errors are \
            always JSON `{\"error\": {\"code\", \"message\"}}`; each code has one status. \
            Unknown routes answer 404 `not_found`, known routes with another method 405 \
            `method_not_allowed`."
    ),
    paths(
        monitors::list,
        monitors::get_one,
        admin::put_monitor,
        admin::delete_monitor,
        admin::reset_monitor,
        ingest::ingest_rows,
        monitors::history,
        predict::predict,
        datadrift::datadrift,
        health::healthz,
        health::readyz,
        health::metrics,
        serve,
    ),
    components(schemas(ErrorBody, drift_contract::FeatureResult)),
    modifiers(&BearerScheme, &GET_PREDICTION, &ErrorResponses),
    tags(
        (name = "monitors", description = "monitors, their latest results and history"),
        (name = "ingest", description = "feature rows in; answered once Redis stored them"),
        (name = "predict", description = "the demo model; rows are logged for monitoring"),
        (name = "admin", description = "create, replace, reset and delete monitors (admin token)"),
        (name = "operations", description = "health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

/// Which error codes each operation can answer with, by route module.
pub(crate) const ROUTE_ERRORS: &[(&str, HttpMethod, &[&[ErrorCode]])] = &[
    ("/v1/monitors", HttpMethod::Get, monitors::LIST_ERRORS),
    (
        "/v1/monitors/{monitor}",
        HttpMethod::Get,
        monitors::GET_ERRORS,
    ),
    ("/v1/monitors/{monitor}", HttpMethod::Put, admin::PUT_ERRORS),
    (
        "/v1/monitors/{monitor}",
        HttpMethod::Delete,
        admin::CLEAR_ERRORS,
    ),
    (
        "/v1/monitors/{monitor}/reset",
        HttpMethod::Post,
        admin::CLEAR_ERRORS,
    ),
    (
        "/v1/monitors/{monitor}/rows",
        HttpMethod::Post,
        ingest::ROWS_ERRORS,
    ),
    (
        "/v1/monitors/{monitor}/history",
        HttpMethod::Get,
        monitors::HISTORY_ERRORS,
    ),
    ("/v1/predict", HttpMethod::Post, predict::PREDICT_ERRORS),
    ("/get-prediction", HttpMethod::Post, predict::PREDICT_ERRORS),
    ("/datadrift", HttpMethod::Post, datadrift::DATADRIFT_ERRORS),
    ("/healthz", HttpMethod::Get, &[]),
    ("/readyz", HttpMethod::Get, health::READY_ERRORS),
    ("/metrics", HttpMethod::Get, &[]),
    ("/openapi.json", HttpMethod::Get, &[]),
];

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`--admin-token` for admin routes; `--ingest-tokens` (or the admin \
                         token) for ingest and predictions when ingest tokens are configured",
                    ))
                    .build(),
            ),
        );
    }
}

/// A route that another route's handler serves under a second path: documented as a copy
/// of that route's operation, with its own id and summary.
pub(crate) struct Alias {
    pub path: &'static str,
    /// The path of the route it copies, under the same method.
    pub of: &'static str,
    pub method: HttpMethod,
    pub operation_id: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
}

impl Modify for Alias {
    fn modify(&self, doc: &mut Document) {
        let Some(mut op) = operation(doc, self.of, &self.method).cloned() else {
            return;
        };
        op.operation_id = Some(self.operation_id.into());
        op.summary = Some(self.summary.into());
        op.description = Some(self.description.into());
        doc.paths
            .add_path_operation(self.path, vec![self.method.clone()], op);
    }
}

struct ErrorResponses;

fn operation<'a>(
    doc: &'a mut Document,
    path: &str,
    method: &HttpMethod,
) -> Option<&'a mut Operation> {
    let item = doc.paths.paths.get_mut(path)?;
    match method {
        HttpMethod::Get => item.get.as_mut(),
        HttpMethod::Put => item.put.as_mut(),
        HttpMethod::Post => item.post.as_mut(),
        HttpMethod::Delete => item.delete.as_mut(),
        _ => None,
    }
}

/// The error response of one status: the error body, with `code` narrowed to `codes`.
fn error_response(codes: &[ErrorCode]) -> utoipa::openapi::Response {
    let description = codes
        .iter()
        .map(|c| format!("`{c}`: {}", c.meaning()))
        .collect::<Vec<_>>()
        .join("; ");
    let narrowed = ObjectBuilder::new()
        .property(
            "error",
            ObjectBuilder::new().property(
                "code",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(codes.iter().map(|c| c.as_str()))),
            ),
        )
        .required("error");
    let schema = AllOfBuilder::new()
        .item(Ref::from_schema_name("ErrorBody"))
        .item(narrowed);
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new().schema(Some(schema)).build(),
    );
    if codes.iter().any(|c| c.retry_after()) {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0)),
                )
                .description(Some("seconds to wait before retrying"))
                .build(),
        );
    }
    response.build()
}

impl Modify for ErrorResponses {
    fn modify(&self, doc: &mut Document) {
        for (path, method, groups) in ROUTE_ERRORS {
            let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
            for &code in groups.iter().flat_map(|g| g.iter()) {
                let codes = by_status.entry(code.status()).or_default();
                if !codes.contains(&code) {
                    codes.push(code);
                }
            }
            let Some(op) = operation(doc, path, method) else {
                continue;
            };
            for (status, codes) in by_status {
                op.responses
                    .responses
                    .insert(status.to_string(), error_response(&codes).into());
            }
        }
    }
}

/// The document as served and committed (pretty JSON, trailing newline).
pub fn document_json() -> Result<String, serde_json::Error> {
    ApiDoc::openapi().to_pretty_json().map(|mut s| {
        s.push('\n');
        s
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "the OpenAPI 3.1 document of this API", body = Object)),
)]
pub async fn serve() -> Response {
    static DOC: OnceLock<Result<String, String>> = OnceLock::new();
    match DOC.get_or_init(|| document_json().map_err(|e| e.to_string())) {
        Ok(doc) => ([(header::CONTENT_TYPE, "application/json")], doc.clone()).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize the OpenAPI document");
            crate::error::ApiError::new(ErrorCode::Internal, "the OpenAPI document is unavailable")
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_document_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        let generated = document_json().unwrap();
        assert!(
            committed == generated,
            "api/openapi.json is missing or out of date; regenerate it from the workspace \
             root with:\n\n    {REGENERATE}\n"
        );
    }

    #[test]
    fn every_operation_declares_its_errors() {
        let doc = ApiDoc::openapi();
        let mut documented = 0;
        for (path, item) in &doc.paths.paths {
            for (name, method, op) in [
                ("GET", HttpMethod::Get, &item.get),
                ("PUT", HttpMethod::Put, &item.put),
                ("POST", HttpMethod::Post, &item.post),
                ("DELETE", HttpMethod::Delete, &item.delete),
            ] {
                if op.is_none() {
                    continue;
                }
                documented += 1;
                assert!(
                    ROUTE_ERRORS
                        .iter()
                        .any(|(p, m, _)| p == path && *m == method),
                    "{name} {path} has no entry in ROUTE_ERRORS"
                );
            }
        }
        assert_eq!(
            documented,
            ROUTE_ERRORS.len(),
            "ROUTE_ERRORS lists an undocumented route"
        );
    }

    #[test]
    fn error_responses_narrow_the_code() {
        let doc: serde_json::Value = serde_json::from_str(&document_json().unwrap()).unwrap();
        let r = &doc["paths"]["/v1/monitors/{monitor}/rows"]["post"]["responses"];
        let codes = &r["409"]["content"]["application/json"]["schema"]["allOf"][1]["properties"]
            ["error"]["properties"]["code"]["enum"];
        assert_eq!(codes, &serde_json::json!(["monitor_reconfigured"]));
        assert!(r["503"]["headers"]["Retry-After"].is_object());
        assert!(r["409"]["headers"]["Retry-After"].is_null());
        assert_eq!(
            doc["paths"]["/v1/monitors/{monitor}"]["put"]["security"],
            serde_json::json!([{"bearer": []}])
        );
    }
}
