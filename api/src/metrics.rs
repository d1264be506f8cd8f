//! This replica's operational metrics (`/metrics`): request counts and latencies by route,
//! rows stored, sampled out and dropped, and how ingest requests are grouped into script calls.

use crate::coalesce::CoalesceMetrics;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use drift_service::metrics::{registered, render};
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone)]
pub struct HttpMetrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    pub rows_dropped: IntCounterVec,
    pub rows_accepted: IntCounterVec,
    /// Rows valid and received but left out by the monitor's `sample_rate`, by monitor
    /// (like `rows_accepted`, only registered monitors become labels, at most
    /// `--max-monitors` of them).
    pub rows_sampled_out: IntCounterVec,
    pub coalesce: CoalesceMetrics,
}

/// Declares and registers a labelled counter family.
fn counters(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    registered(registry, IntCounterVec::new(Opts::new(name, help), labels)?)
}

/// Declares and registers an unlabelled histogram.
fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
) -> Result<Histogram, prometheus::Error> {
    registered(
        registry,
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?,
    )
}

impl HttpMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let latency = HistogramOpts::new(
            "http_request_duration_seconds",
            "HTTP request latency by route and method",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ]);
        Ok(HttpMetrics {
            requests: counters(
                &registry,
                "http_requests_total",
                "HTTP requests by route, method and status",
                &["route", "method", "status"],
            )?,
            duration: registered(&registry, HistogramVec::new(latency, &["route", "method"])?)?,
            rows_dropped: counters(
                &registry,
                "drift_rows_dropped_total",
                "Rows logged for monitoring that could not be stored, by reason",
                &["reason"],
            )?,
            rows_accepted: counters(
                &registry,
                "drift_api_rows_accepted_total",
                "Rows this replica stored in Redis, by monitor",
                &["monitor"],
            )?,
            rows_sampled_out: counters(
                &registry,
                "drift_rows_sampled_out_total",
                "Valid rows this replica received but did not store because the monitor's sample_rate left them out, by monitor",
                &["monitor"],
            )?,
            coalesce: CoalesceMetrics {
                requests_per_call: histogram(
                    &registry,
                    "drift_api_ingest_requests_per_call",
                    "Ingest requests (rows, /datadrift, logged predictions) carried by each ingest script call",
                    vec![1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 64.0, 128.0, 256.0],
                )?,
                rows_per_call: histogram(
                    &registry,
                    "drift_api_ingest_rows_per_call",
                    "Rows carried by each ingest script call",
                    vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0],
                )?,
            },
            registry,
        })
    }

    /// This replica's metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        render(&self.registry)
    }
}

/// Clients choose the method token freely (`QUERY`, `FOO`): only the standard ones become
/// labels, so that label values stay bounded.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        // The OpenTelemetry convention for methods outside the known set.
        _ => "_OTHER",
    }
}

/// Records every request under its route template, so labels stay bounded whatever the
/// paths clients send.
pub async fn track(State(metrics): State<Arc<HttpMetrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let method = method_label(req.method());
    let start = Instant::now();
    let resp = next.run(req).await;
    let elapsed = start.elapsed().as_secs_f64();
    metrics
        .requests
        .with_label_values(&[&route, method, resp.status().as_str()])
        .inc();
    metrics
        .duration
        .with_label_values(&[&route, method])
        .observe(elapsed);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(
            method_label(&Method::from_bytes(b"QUERY").unwrap()),
            "_OTHER"
        );
    }
}
