//! The catalog of job kinds: each kind's wire name, payload type, policy and exposure, and the
//! typed enqueue facade ([`Queues::push`]). The API, the scheduler and other jobs make jobs
//! with this crate alone; `nightshift-workers` implements a handler for every kind listed here
//! (a worker refuses to start if one is missing), as River keeps job args apart from workers.
//!
//! Besides the contract, a kind whose enqueue is more than a push keeps that producer side
//! here: e-mails are rendered and written to the outbox, webhooks written to theirs, before
//! the send job is pushed.
use std::{collections::BTreeMap, sync::OnceLock};

mod kind;
mod queues;

pub mod backup;
pub mod cadence;
pub mod cashflow;
pub mod diag;
pub mod email;
pub mod maintenance;
pub mod reminders;
pub mod schedules;
pub mod secrets;
pub mod webhook;

pub use kind::{ConcurrencyRule, Exposure, Invalid, Kind, KindSpec, PLATFORM_KEYS, Policy, Typed, platform_key};
pub use queues::{Queues, export_queue_depth};

/// Lists every kind once: seals [`Kind`] to these types and builds the catalog from them.
macro_rules! catalog {
    ($($kind:ty),* $(,)?) => {
        $(impl kind::sealed::Listed for $kind {})*

        fn specs() -> Vec<KindSpec> {
            vec![$(KindSpec::of::<$kind>()),*]
        }

        /// The listed names, for the catalog's own tests.
        #[cfg(test)]
        fn kind_names() -> Vec<&'static str> {
            vec![$(<$kind as Kind>::NAME),*]
        }
    };
}

/// Calls the macro `$m` with the path of every kind: the one list of kinds. The catalog is
/// built from it below, and the workers build their handler table from it, so a kind cannot be
/// in one and not the other.
#[macro_export]
macro_rules! with_every_kind {
    ($m:ident) => {
        $m! {
            $crate::diag::Noop,
            $crate::diag::Sleep,
            $crate::diag::Block,
            $crate::diag::Fail,
            $crate::diag::Snooze,
            $crate::diag::Effect,
            $crate::diag::Abort,
            $crate::cashflow::Project,
            $crate::cashflow::ProjectMany,
            $crate::cashflow::Nightly,
            $crate::cashflow::NightlyDone,
            $crate::email::SendEmail,
            $crate::reminders::Scan,
            $crate::reminders::Notify,
            $crate::webhook::SendWebhook,
            $crate::maintenance::Cleanup,
            $crate::secrets::Rotate,
            $crate::backup::Run,
            $crate::backup::Verify,
        }
    };
}

with_every_kind!(catalog);

/// Every kind, by name.
pub fn catalog() -> &'static BTreeMap<&'static str, KindSpec> {
    static CATALOG: OnceLock<BTreeMap<&'static str, KindSpec>> = OnceLock::new();
    CATALOG.get_or_init(|| specs().into_iter().map(|s| (s.name, s)).collect())
}

/// A kind known only by its name (a request, a schedule file, a job read back from Redis).
pub fn find(kind: &str) -> Option<&'static KindSpec> {
    catalog().get(kind)
}

/// The queues the catalog uses, each once.
pub fn queue_names() -> Vec<&'static str> {
    let mut names: Vec<_> = catalog().values().map(|s| s.policy.queue).collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_kind_has_one_entry_under_its_wire_name() {
        let names = kind_names();
        assert_eq!(catalog().len(), names.len(), "two kinds share a wire name");
        for name in names {
            assert_eq!(find(name).map(|s| s.name), Some(name));
        }
    }

    #[test]
    fn typed_jobs_carry_their_kind_and_policy() {
        let job = cashflow::Project::job(&cashflow::ProjectPayload {
            user_id: 7,
            as_of: None,
            horizon_days: Some(30),
            include_as_of: false,
        })
        .into_inner();
        assert_eq!(job.kind, "cashflow.project");
        assert_eq!(job.max_attempts, cashflow::Project::POLICY.max_attempts);
        let back: serde_json::Value = serde_json::from_str(&job.payload).unwrap();
        assert_eq!(back["user_id"], 7);
        find("cashflow.project").unwrap().validate(&back).unwrap();
    }
}
