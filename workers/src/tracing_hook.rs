//! When traces are exported: names and describes each run's span as OpenTelemetry's messaging
//! conventions ask, and ties it to the context its job was created in: a link (the run is its
//! own trace, as the conventions advise) or, for kinds that ask, a child.
use nightshift_common::telemetry::{self, Relation};
use nightshift_queue::Job;

pub(crate) fn relate_run(span: &tracing::Span, job: &Job) {
    if !telemetry::exporting() {
        return;
    }
    // Before the span is related, which starts it: its kind is fixed from then on.
    span.record(
        "otel.name",
        tracing::field::display(format_args!("process {}", job.queue)),
    );
    span.record("otel.kind", "consumer");
    span.record("messaging.system", "nightshift");
    span.record("messaging.operation.name", "process");
    span.record("messaging.destination.name", &*job.queue);
    span.record("messaging.message.id", &*job.id);
    let relation = match nightshift_catalog::find(&job.kind) {
        Some(spec) if spec.trace_as_child => Relation::Child,
        _ => Relation::Link,
    };
    telemetry::relate(span, job.trace_parent.as_deref(), relation);
}
