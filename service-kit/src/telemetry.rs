//! Pieces of the Prometheus metrics both services register: the error-code label, the
//! latency buckets, and the text exposition of a registry. Each service keeps its own
//! registry and metric names (`v1_relay_*`, `v1_sim_*`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::registry::Registry;
use shared_protocol::ErrorCode;

/// Label for counters split by error code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: String,
}

impl CodeLabel {
    pub fn of(code: ErrorCode) -> Self {
        Self { code: code.as_str().to_owned() }
    }
}

/// Latency buckets in seconds, 0.5 ms to 2.5 s: a frame budget is 33 ms.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5].into_iter()
}

/// The text exposition of every metric of `registry`.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;

    #[test]
    fn encodes_prefixed_counters_by_code() {
        let mut registry = Registry::with_prefix("v1_test");
        let errors: Family<CodeLabel, Counter> = Family::default();
        registry.register("errors", "errors by code", errors.clone());
        errors.get_or_create(&CodeLabel::of(ErrorCode::TooLarge)).inc();
        let text = encode(&registry);
        assert!(text.contains("v1_test_errors_total{code=\"too_large\"} 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
