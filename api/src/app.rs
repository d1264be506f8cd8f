//! The router and the server entry point.

use crate::auth::{self, Tokens};
use crate::config::ApiConfig;
use crate::http::{self, ServerLimits};
use crate::limits::{self, BodyDeadline, MaxBody};
use crate::metrics::{self, HttpMetrics};
use crate::openapi;
use crate::routes::{admin, datadrift, health, ingest, monitors, predict};
use crate::rowlog::{self, RowLogConfig};
use crate::state::{AppState, Limits};
use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post, put, MethodRouter};
use axum::Router;
use drift_core::dataset::DEFAULT_MONITOR;
use drift_core::model::LogisticModel;
use drift_core::MonitorSpec;
use drift_service::Backoff;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub fn router(
    state: Arc<AppState>,
    max_body_bytes: usize,
    max_reference_bytes: usize,
    body_timeout: Duration,
) -> Router {
    let metrics = state.metrics.clone();
    let admin = || middleware::from_fn_with_state(state.tokens.clone(), auth::admin_only);
    let ingest = || middleware::from_fn_with_state(state.tokens.clone(), auth::ingest_only);
    let declared = |n| middleware::from_fn_with_state(MaxBody(n), limits::declared_length);
    let json = || middleware::from_fn(limits::json_only);
    // Route layers run only once a route and method matched, so a 404 or 405 never asks
    // for a token, and the token is checked before any extractor reads the request: the
    // order is token (401/403), declared length (413), media type (415), then the handler.
    // (The last `route_layer` added runs first.)
    let admin_monitor = put(admin::put_monitor)
        .layer(DefaultBodyLimit::max(max_reference_bytes))
        .layer(declared(max_reference_bytes))
        .delete(admin::delete_monitor)
        .route_layer(admin());
    let ingesting = |r: MethodRouter<Arc<AppState>>| {
        r.route_layer(json())
            .route_layer(declared(max_body_bytes))
            .route_layer(ingest())
    };
    Router::new()
        .route("/v1/monitors", get(monitors::list))
        .route(
            "/v1/monitors/{monitor}",
            get(monitors::get_one).merge(admin_monitor),
        )
        .route(
            "/v1/monitors/{monitor}/reset",
            post(admin::reset_monitor)
                .route_layer(declared(max_body_bytes))
                .route_layer(admin()),
        )
        .route(
            "/v1/monitors/{monitor}/rows",
            ingesting(post(ingest::ingest_rows)),
        )
        .route("/v1/monitors/{monitor}/history", get(monitors::history))
        .route("/datadrift", ingesting(post(datadrift::datadrift)))
        .route("/v1/predict", ingesting(post(predict::predict)))
        .route("/get-prediction", ingesting(post(predict::predict)))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::serve))
        .fallback(health::not_found)
        .method_not_allowed_fallback(health::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(
            BodyDeadline(body_timeout),
            limits::body_deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::track,
        ))
        .with_state(state)
}

/// The server's connection limits from the configuration.
pub fn server_limits(cfg: &ApiConfig) -> ServerLimits {
    ServerLimits {
        header_timeout: Duration::from_millis(cfg.header_timeout_ms.max(1)),
        idle_timeout: Duration::from_millis(cfg.idle_timeout_ms.max(1)),
        max_connections: cfg.max_connections,
    }
}

/// Builds the replica's state: store, metrics and the monitors it registers.
pub fn build_state(cfg: &ApiConfig) -> anyhow::Result<Arc<AppState>> {
    let store = cfg.redis.connect(32, cfg.caps())?;
    let mut own = Vec::new();
    if !cfg.no_default_monitor {
        own.push(MonitorSpec::default_monitor(cfg.params()).context("default monitor")?);
    }
    if let Some(path) = &cfg.monitors_config {
        own.extend(crate::monitors_file::load(path, &cfg.params())?);
    }
    // The demo model is fit on the embedded data set's label, for the default monitor.
    let model = match own.iter().find(|s| s.config.name == DEFAULT_MONITOR) {
        Some(spec) => {
            let model = LogisticModel::breast_cancer().context("fitting the demo model")?;
            Some((Arc::new(model), Arc::new(spec.config.clone())))
        }
        None => None,
    };
    let metrics = Arc::new(HttpMetrics::new()?);
    Ok(Arc::new(
        AppState::new(
            store,
            metrics,
            cfg.max_batch_rows,
            own,
            model,
            Tokens::new(
                cfg.admin_token.as_ref().map(|s| s.0.clone()),
                cfg.ingest_tokens.iter().map(|s| s.0.clone()).collect(),
            ),
            Limits {
                max_monitors: cfg.max_monitors,
                max_features: cfg.max_features,
            },
        )
        .with_coalescing(cfg.coalesce()),
    ))
}

/// Serves the API on `listener` until `shutdown` resolves, then drains in-flight requests.
///
/// Monitors are registered in the background, retrying until Redis answers, so a replica
/// that starts before Redis comes up by itself (and answers 503 meanwhile).
pub async fn run(
    listener: TcpListener,
    cfg: ApiConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = build_state(&cfg)?;
    let registering = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut backoff = Backoff::default();
            loop {
                match state.register_own().await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "registering monitors failed; retrying");
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
            }
        })
    };
    let writer = state.model.as_ref().map(|(_, monitor)| {
        let (logger, task) = rowlog::start(
            state.clone(),
            monitor.name.clone(),
            RowLogConfig {
                capacity: cfg.predict_log_capacity,
                max_batch: 500,
                max_delay: Duration::from_millis(5),
            },
        );
        if let Ok(mut slot) = state.row_logger.write() {
            *slot = Some(logger);
        }
        task
    });
    let app = router(
        state.clone(),
        cfg.max_body_bytes,
        cfg.max_reference_bytes,
        Duration::from_millis(cfg.body_timeout_ms.max(1)),
    );
    tracing::info!(addr = %listener.local_addr()?, "drift-api listening");
    let served = http::serve(listener, app, server_limits(&cfg), shutdown)
        .await
        .context("serving HTTP");
    // In-flight requests are done: flush the prediction rows still buffered.
    if let Ok(mut slot) = state.row_logger.write() {
        slot.take();
    }
    if let Some(task) = writer {
        if tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .is_err()
        {
            tracing::warn!("prediction rows not flushed within 5 s");
        }
    }
    registering.abort();
    served
}

#[cfg(test)]
mod tests {
    //! The router's layering, on requests that never reach Redis (none listens on the
    //! configured port): which check answers first, and that it answers in the contract.

    use super::*;
    use crate::config::Secret;
    use axum::body::Body;
    use axum::http::{Method, Request};
    use serde_json::Value;
    use tower::ServiceExt;

    fn app(tweak: impl FnOnce(&mut ApiConfig)) -> Router {
        let mut cfg = ApiConfig::for_redis("redis://127.0.0.1:9", "unit");
        cfg.admin_token = Some(Secret("tok".into()));
        tweak(&mut cfg);
        let state = build_state(&cfg).unwrap();
        router(
            state,
            cfg.max_body_bytes,
            cfg.max_reference_bytes,
            Duration::from_secs(30),
        )
    }

    async fn call(
        app: &Router,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn code(v: &Value) -> &str {
        v["error"]["code"].as_str().unwrap_or("")
    }

    /// A request (method, path, token, body) and the status and error code it must get.
    type Case<'a> = (Method, &'a str, Option<&'a str>, &'a str, u16, &'a str);

    async fn check(app: &Router, cases: Vec<Case<'_>>) {
        for (method, uri, token, body, status, want) in cases {
            let (s, v) = call(app, method.clone(), uri, token, body).await;
            assert_eq!((s, code(&v)), (status, want), "{method} {uri}");
        }
    }

    #[tokio::test]
    async fn auth_layers_answer_before_any_extractor() {
        let app = app(|c| c.ingest_tokens = vec![Secret("ing".into())]);
        #[rustfmt::skip]
        let cases = vec![
            (Method::PUT, "/v1/monitors/bad%20name?nonsense=1", None, "", 401, "unauthorized"),
            (Method::PUT, "/v1/monitors/bad%20name", Some("tok"), "", 422, "invalid_monitor"),
            (Method::PUT, "/v1/monitors/m?nonsense=1", Some("tok"), "", 422, "invalid_parameters"),
            (Method::POST, "/v1/monitors/m/reset", Some("ing"), "", 403, "forbidden"),
            (Method::POST, "/v1/monitors/m/rows", None, "{", 401, "unauthorized"),
            (Method::POST, "/v1/monitors/m/rows", Some("ing"), "{", 400, "malformed_json"),
            (Method::POST, "/v1/predict", Some("tok"), "{", 400, "malformed_json"),
            (Method::POST, "/datadrift", Some("nope"), "{", 403, "forbidden"),
            // A wrong method is a 405 whatever the token.
            (Method::PATCH, "/v1/monitors/m", None, "", 405, "method_not_allowed"),
        ];
        check(&app, cases).await;
    }

    #[tokio::test]
    async fn extractors_keep_the_contract() {
        let app = app(|c| c.max_body_bytes = 16);
        let big = "x".repeat(17);
        // A reference may be larger than other bodies: `--max-reference-bytes` applies.
        // (A column of missing values only, past the 16-byte limit of other bodies.)
        let csv = format!("a\n{}", "NA\n".repeat(20));
        #[rustfmt::skip]
        let cases = vec![
            (Method::POST, "/v1/monitors/m/rows", None, &*big, 413, "payload_too_large"),
            (Method::PUT, "/v1/monitors/m", Some("tok"), &*csv, 422, "invalid_reference"),
            (Method::GET, "/v1/monitors/%FF", None, "", 400, "bad_path"),
            (Method::GET, "/v1/monitors/m/history?after=abc", None, "", 400, "bad_query"),
            (Method::GET, "/v1/monitors/m/history?limit=-1", None, "", 400, "bad_query"),
            (Method::GET, "/nope", None, "", 404, "not_found"),
        ];
        check(&app, cases).await;
        let (s, v) = call(&app, Method::GET, "/healthz", None, "").await;
        assert_eq!((s, v), (200, serde_json::json!({"status": "ok"})));
    }

    #[tokio::test]
    async fn serves_the_openapi_document() {
        let app = app(|_| {});
        let (s, v) = call(&app, Method::GET, "/openapi.json", None, "").await;
        assert_eq!(s, 200);
        let want: Value = serde_json::from_str(&crate::openapi::document_json().unwrap()).unwrap();
        assert_eq!(v, want);
    }
}
