//! Ties each run's span to the context its job was created in: a link (the run is its own
//! trace, as OpenTelemetry's messaging conventions advise) or, for kinds that ask, a child.
use nightshift_common::telemetry::{self, Relation};
use nightshift_queue::Job;

pub(crate) fn relate_run(span: &tracing::Span, job: &Job) {
    if !telemetry::exporting() {
        return;
    }
    let relation = match nightshift_catalog::find(&job.kind) {
        Some(spec) if spec.trace_as_child => Relation::Child,
        _ => Relation::Link,
    };
    telemetry::relate(span, job.trace_parent.as_deref(), relation);
}
