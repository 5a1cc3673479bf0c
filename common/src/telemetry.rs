use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, Ordering},
};

use opentelemetry::{
    propagation::TextMapPropagator,
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, filter::Targets, fmt, prelude::*};

/// Flushes and stops the trace exporter when dropped (at the end of `main`), so the last spans
/// of a process that exits are sent.
#[must_use]
pub struct Telemetry(Option<SdkTracerProvider>);

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = p.shutdown();
        }
    }
}

/// Sets up tracing once per process: `RUST_LOG` filters (default `info`), and
/// `NIGHTSHIFT_LOG_FORMAT=json` switches to JSON lines for production log shipping. With
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) set, spans are also exported over
/// OTLP/HTTP, configured by the standard `OTEL_*` variables (service name, sampler, headers,
/// batch delay); unset, no exporter exists and spans cost what they did.
pub fn init() -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let json = std::env::var("NIGHTSHIFT_LOG_FORMAT").is_ok_and(|v| v == "json");
    let provider = otlp_provider();
    // Exported spans do not depend on RUST_LOG (a quiet log must not switch traces off):
    // the platform's own, at info, and none of its libraries' (the exporter's HTTP client
    // among them, whose spans would feed back into the exporter).
    // Spans carry the attributes they declare and nothing per span beside: no thread, source
    // location, target or busy/idle times (each an allocation, or clock reads at every poll
    // of a job's future), and no OpenTelemetry context made current at each poll (nothing
    // here reads it: contexts are taken from the spans themselves). Measured with
    // `nightshift bench-tracing`; the note of the commit that set this has the figures.
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("nightshift"))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_context_activation(false)
            .with_filter(Targets::new().with_target("nightshift", tracing::Level::INFO))
    });
    let registry = tracing_subscriber::registry().with(otel);
    // Logs go to stderr: stdout carries command output (a token, a count) for scripts.
    let result = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init()
    } else {
        registry
            .with(fmt::layer().compact().with_writer(std::io::stderr).with_filter(filter))
            .try_init()
    };
    // A second init (tests starting several components) keeps the first subscriber.
    if result.is_ok() && provider.is_some() {
        EXPORTING.store(true, Ordering::Relaxed);
    }
    Telemetry(provider)
}

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether this process exports traces: when not, nothing asks spans for their context.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

fn otlp_provider() -> Option<SdkTracerProvider> {
    let set = |v: &str| std::env::var(v).is_ok_and(|s| !s.trim().is_empty());
    if !set("OTEL_EXPORTER_OTLP_ENDPOINT") && !set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder().with_http().build() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("OTEL_EXPORTER_OTLP_ENDPOINT: no trace exporter ({e}); tracing stays local");
            return None;
        }
    };
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "nightshift".into());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .build();
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    )
}

/// The W3C `traceparent` of a span, when it is traced (an exporter is set up); `None` costs
/// nothing else.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid()
        .then(|| format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8()))
}

/// The context a W3C `traceparent` names, if it is well formed.
pub fn context_of(traceparent: &str) -> Option<opentelemetry::Context> {
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

/// How a span relates to the context its work was created in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// A link: the work is its own trace (a job's run, as the messaging conventions advise).
    Link,
    /// A child: the work continues the creator's trace.
    Child,
}

/// Ties `span` to the context `traceparent` names, and records the span's own `trace_id` and
/// `span_id` in its fields (declared `Empty`), so log lines inside it carry them.
pub fn relate(span: &tracing::Span, traceparent: Option<&str>, relation: Relation) {
    if let Some(cx) = traceparent.and_then(context_of) {
        match relation {
            Relation::Child => {
                let _ = span.set_parent(cx);
            }
            Relation::Link => span.add_link(cx.span().span_context().clone()),
        }
    }
    record_ids(span);
}

/// Records a traced span's `trace_id` and `span_id` fields.
pub fn record_ids(span: &tracing::Span) {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        span.record("trace_id", tracing::field::display(sc.trace_id()));
        span.record("span_id", tracing::field::display(sc.span_id()));
    }
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
