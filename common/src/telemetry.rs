use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Sets up tracing once per process: `RUST_LOG` filters (default `info`), and
/// `NIGHTSHIFT_LOG_FORMAT=json` switches to JSON lines for production log shipping.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let json = std::env::var("NIGHTSHIFT_LOG_FORMAT").is_ok_and(|v| v == "json");
    let registry = tracing_subscriber::registry().with(filter);
    // Logs go to stderr: stdout carries command output (a token, a count) for scripts.
    let result = if json {
        registry
            .with(fmt::layer().json().with_current_span(true).with_writer(std::io::stderr))
            .try_init()
    } else {
        registry
            .with(fmt::layer().compact().with_writer(std::io::stderr))
            .try_init()
    };
    // A second init (tests starting several components) keeps the first subscriber.
    let _ = result;
}

/// Installs the Prometheus recorder once; every process renders it on its `/metrics`.
pub fn metrics() -> metrics_exporter_prometheus::PrometheusHandle {
    use std::sync::OnceLock;
    static HANDLE: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
            // Durations as histograms (buckets from 1 ms to 10 min), not summaries: histograms
            // aggregate across processes, so p99 over all workers is one PromQL query.
            const SECONDS: [f64; 14] = [
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0, 600.0,
            ];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS)
                .expect("buckets are not empty")
                .install_recorder()
                .expect("a metrics recorder was installed twice")
        })
        .clone()
}

/// The longest piece of untrusted text a log line carries.
pub const UNTRUSTED_MAX: usize = 64;

/// Untrusted text (a token's header, a client's value) made safe for a log line: at most
/// `UNTRUSTED_MAX` characters, control characters and quotes escaped, so it can neither forge
/// a line (newlines, ANSI escapes) nor flood the log.
pub fn untrusted(s: &str) -> String {
    let mut out: String = s.chars().take(UNTRUSTED_MAX).flat_map(char::escape_debug).collect();
    if s.chars().nth(UNTRUSTED_MAX).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_is_escaped_and_bounded() {
        assert_eq!(untrusted("k1"), "k1");
        assert_eq!(untrusted("a\nfake line\u{1b}[31m"), "a\\nfake line\\u{1b}[31m");
        let long = untrusted(&"x".repeat(100_000));
        assert_eq!(long, format!("{}…", "x".repeat(UNTRUSTED_MAX)));
    }
}
