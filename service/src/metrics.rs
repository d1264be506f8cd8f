//! Prometheus plumbing every server shares: registering a collector while keeping a
//! handle on it, and rendering a registry in the text format.

use prometheus::core::Collector;
use prometheus::{Encoder, Registry};

/// Registers `collector` in `registry` and hands it back, so a family is declared in one
/// expression.
pub fn registered<C: Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> Result<C, prometheus::Error> {
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

/// The registry in the Prometheus text format (empty if encoding fails, which only a
/// collector bug can cause).
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    let _ = prometheus::TextEncoder::new().encode(&registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// The content type of [`render`]'s output.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4";
