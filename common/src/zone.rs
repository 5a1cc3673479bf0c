//! Local wall times in a time zone, by one rule that reminders and schedules share: a local time
//! that does not exist (the spring-forward gap) is moved forward by the gap, so 02:30 on a day
//! clocks jump from 02:00 to 03:00 becomes 03:30; one that happens twice (the fall-back fold) is
//! the first. Either way a local time names exactly one instant.
use chrono::{DateTime, Days, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// The instant a local date-time names in `tz`: a gap moves it forward by the gap's length,
/// a fold takes the earlier instant.
pub fn resolve(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    if let Some(t) = tz.from_local_datetime(&local).earliest() {
        return t.with_timezone(&Utc);
    }
    // In a gap: read the wall time with the offset in force before the jump (a day earlier is
    // safely before it; no zone changes offset twice in a day).
    let before = tz
        .from_local_datetime(&(local - Days::new(1)))
        .earliest()
        .map(|t| t.offset().fix())
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"));
    (local - before).and_utc()
}
