//! The repeat rule that reminders and recurring finance items share: a known cadence, and the
//! fields that cadence needs, checked the same way for both (422s named under `at`).
use crate::error::ApiError;

use nightshift_catalog::cadence::NAMES as CADENCES;

/// Two increasing days of the month, each 1 to 31 (short months clamp them).
pub(super) fn two_days(days: &[i32]) -> bool {
    matches!(days, [a, b] if (1..=31).contains(a) && (1..=31).contains(b) && a < b)
}

/// A known cadence, with the interval every_n_weeks needs and the days semi_monthly needs.
pub(super) fn check(
    at: &str,
    cadence: &str,
    interval_weeks: Option<i32>,
    days_of_month: Option<&[i32]>,
) -> Result<(), ApiError> {
    let field = |f: &str| format!("{at}{f}");
    if !CADENCES.contains(&cadence) {
        return Err(ApiError::invalid(
            field("cadence"),
            format!("`{cadence}` is not one of {}", CADENCES.join(", ")),
        ));
    }
    if cadence == "every_n_weeks" && !interval_weeks.is_some_and(|w| (1..=52).contains(&w)) {
        return Err(ApiError::invalid(
            field("interval_weeks"),
            "every_n_weeks needs interval_weeks from 1 to 52",
        ));
    }
    if cadence == "semi_monthly" && !days_of_month.is_some_and(two_days) {
        return Err(ApiError::invalid(
            field("days_of_month"),
            "semi_monthly needs two increasing days of the month, 1 to 31",
        ));
    }
    Ok(())
}
