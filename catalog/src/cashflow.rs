//! Cash-flow projections: `cashflow.project` projects one user's daily balance;
//! `cashflow.nightly` projects every user once it is past 02:00 in their time zone, through
//! `cashflow.project_many` jobs of a few hundred users each.
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use nightshift_queue::{Backoff, BatchOutcome};
use serde::{Deserialize, Serialize};

use crate::{ConcurrencyRule, Exposure, Invalid, Kind, Policy};

pub const DEFAULT_HORIZON_DAYS: u32 = 90;
/// Days a projection may cover.
pub const HORIZON_DAYS: std::ops::RangeInclusive<u32> = 1..=366;
/// The dates the finance data and the projections accept: wide enough for any real account,
/// narrow enough that no date arithmetic on them (a horizon, a weekend shift, a yearly
/// occurrence) can leave the calendar the engine and PostgreSQL share.
pub const FIRST_DATE: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
pub const LAST_DATE: NaiveDate = NaiveDate::from_ymd_opt(2199, 12, 31).unwrap();

/// A date inside [`FIRST_DATE`, `LAST_DATE`], or the 422 that names `field`.
pub fn check_date(field: &str, date: NaiveDate) -> Result<NaiveDate, Invalid> {
    if (FIRST_DATE..=LAST_DATE).contains(&date) {
        Ok(date)
    } else {
        Err((
            field.into(),
            format!("must be between {FIRST_DATE} and {LAST_DATE}, got {date}"),
        ))
    }
}

/// A horizon inside [`HORIZON_DAYS`], or the 422 that names `field`.
pub fn check_horizon(field: &str, days: u32) -> Result<u32, Invalid> {
    if HORIZON_DAYS.contains(&days) {
        Ok(days)
    } else {
        Err((field.into(), format!("must be 1 to 366 days, got {days}")))
    }
}
/// The user's local time after which the nightly run projects them.
pub const LOCAL_START: &str = "02:00";

pub struct Project;

/// The payload of `cashflow.project`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CashflowProjectPayload)]
pub struct ProjectPayload {
    pub user_id: i64,
    /// The user's local date to project from; defaults to today in the user's time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<NaiveDate>,
    /// Days to project, 1 to 366; 90 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 366)]
    pub horizon_days: Option<u32>,
    /// Whether balances already hold their day's items (the bank booked today's payday).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_as_of: bool,
}

impl Kind for Project {
    const NAME: &'static str = "cashflow.project";
    const EXPOSURE: Exposure = Exposure::Client;
    const USER_FIELD: Option<&'static str> = Some("user_id");
    const POLICY: Policy = Policy {
        queue: "cashflow",
        max_attempts: 5,
        timeout: Duration::from_secs(60),
        backoff: Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(600),
        },
    };
    type Payload = ProjectPayload;

    /// Never two projections of one user at once, however they were asked for.
    const CONCURRENCY: Option<ConcurrencyRule> = Some(ConcurrencyRule {
        field: "user_id",
        prefix: "cashflow:user",
        limit: 1,
    });

    fn check(p: &ProjectPayload) -> Result<(), Invalid> {
        if let Some(d) = p.as_of {
            check_date("as_of", d)?;
        }
        if let Some(h) = p.horizon_days {
            check_horizon("horizon_days", h)?;
        }
        Ok(())
    }
}

/// The nightly run's unit: a few hundred users projected with one read and one write, each
/// stored once per date (a user already projected for the date is skipped).
pub struct ProjectMany;

/// Users per `cashflow.project_many` job: large enough that two statements carry many users,
/// small enough that a retry redoes little and a job stays well inside 64 KiB.
pub const USERS_PER_JOB: usize = 500;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectManyPayload {
    /// (user id, the user's local date to project from).
    pub users: Vec<(i64, NaiveDate)>,
}

impl Kind for ProjectMany {
    const NAME: &'static str = "cashflow.project_many";
    const EXPOSURE: Exposure = Exposure::Operator;
    const POLICY: Policy = Project::POLICY;
    /// Behind interactive work (a user's refresh) in the same queue.
    const PRIORITY: u8 = 7;
    type Payload = ProjectManyPayload;

    fn check(p: &ProjectManyPayload) -> Result<(), Invalid> {
        if p.users.len() > 2 * USERS_PER_JOB {
            return Err((
                "users".into(),
                format!("at most {} users, got {}", 2 * USERS_PER_JOB, p.users.len()),
            ));
        }
        for (i, (_, d)) in p.users.iter().enumerate() {
            check_date(&format!("users[{i}]"), *d)?;
        }
        Ok(())
    }
}

pub struct Nightly;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NightlyPayload {
    /// The instant whose local times decide who is due; defaults to now.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    /// Attempts of each page's job instead of its kind's (1 to 25): an operator's run with
    /// fewer retries.
    #[serde(default)]
    pub page_attempts: Option<u32>,
}

impl Kind for Nightly {
    const NAME: &'static str = "cashflow.nightly";
    const EXPOSURE: Exposure = Exposure::Operator;
    const POLICY: Policy = Policy {
        queue: "default",
        max_attempts: 5,
        timeout: Duration::from_secs(1800),
        backoff: Backoff {
            base: Duration::from_secs(30),
            max: Duration::from_secs(900),
        },
    };
    type Payload = NightlyPayload;

    fn check(p: &NightlyPayload) -> Result<(), Invalid> {
        match p.page_attempts {
            Some(n) if !(1..=25).contains(&n) => Err(("page_attempts".into(), "must be 1 to 25".into())),
            _ => Ok(()),
        }
    }
}

/// The callback of a nightly run's batch: records the run's summary once its pages have all
/// finished.
pub struct NightlyDone;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NightlyDonePayload {
    /// The run's batch, as it finished.
    #[serde(default)]
    pub batch: Option<BatchOutcome>,
}

impl Kind for NightlyDone {
    const NAME: &'static str = "cashflow.nightly_done";
    const EXPOSURE: Exposure = Exposure::Internal;
    const POLICY: Policy = Project::POLICY;
    type Payload = NightlyDonePayload;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KindSpec;

    #[test]
    fn a_projection_holds_its_users_key_whether_made_typed_or_from_a_request() {
        let payload = ProjectPayload {
            user_id: 42,
            as_of: None,
            horizon_days: None,
            include_as_of: false,
        };
        let typed = Project::job(&payload).into_inner();
        let from_json = KindSpec::of::<Project>().new_job(&serde_json::to_value(&payload).unwrap());
        for job in [typed, from_json] {
            let c = job.concurrency.expect("a concurrency key");
            assert_eq!((c.key.as_str(), c.limit), ("~platform:cashflow:user:42", 1));
        }
        // Kinds without a rule hold none.
        let nightly = Nightly::job(&NightlyPayload::default()).into_inner();
        assert!(nightly.concurrency.is_none());
    }
}
