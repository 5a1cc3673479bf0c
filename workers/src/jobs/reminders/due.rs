//! When a reminder's notifications are due: pure date maths in the user's time zone.
//!
//! A local time is resolved by the rule schedules share (`nightshift_common::zone::resolve`: a
//! gap moves it forward, a fold takes the first), so each (reminder, due date) has exactly one
//! instant, and a scan over any windows that tile time finds it exactly once.
use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use nightshift_common::zone::resolve;

use crate::jobs::cashflow::engine::Recurring;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DueRule {
    Once(NaiveDate),
    Every(Recurring),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    pub rule: DueRule,
    /// Days before the due date the user is told.
    pub lead_days: u32,
    /// The user's local time of day the notification goes.
    pub notify_time: NaiveTime,
    pub tz: Tz,
}

impl Reminder {
    pub fn notify_at(&self, due: NaiveDate) -> DateTime<Utc> {
        let day = due - Days::new(u64::from(self.lead_days));
        resolve(self.tz, day.and_time(self.notify_time))
    }

    fn due_dates(&self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        match &self.rule {
            DueRule::Once(d) => (from..=to).contains(d).then_some(*d).into_iter().collect(),
            DueRule::Every(r) => r.dates_between(from, to),
        }
    }

    /// Every (due date, notification instant) with the instant in `(after, until]`.
    pub fn due_in(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<(NaiveDate, DateTime<Utc>)> {
        if until <= after {
            return Vec::new();
        }
        // A notification's local date is within a day of the window's local dates (offsets
        // are under a day); its due date is `lead_days` later.
        let lead = Days::new(u64::from(self.lead_days));
        let first = after.with_timezone(&self.tz).date_naive() - Days::new(1) + lead;
        let last = until.with_timezone(&self.tz).date_naive() + Days::new(1) + lead;
        self.due_dates(first, last)
            .into_iter()
            .map(|d| (d, self.notify_at(d)))
            .filter(|(_, t)| *t > after && *t <= until)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, NaiveDate, NaiveTime};

    use super::*;
    use crate::jobs::cashflow::engine::{BusinessDay, Cadence};

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn once(tz: Tz, due: &str, at: &str) -> Reminder {
        Reminder {
            rule: DueRule::Once(date(due)),
            lead_days: 0,
            notify_time: at.parse::<NaiveTime>().unwrap(),
            tz,
        }
    }

    /// Scans a day around `day` in 5-minute windows, as the scheduled scan does, and returns
    /// every firing.
    fn scan_around(r: &Reminder, day: &str) -> Vec<(NaiveDate, DateTime<Utc>)> {
        let mut t = date(day).and_hms_opt(0, 0, 0).unwrap().and_utc() - Duration::hours(14);
        let end = t + Duration::hours(40);
        let mut fired = Vec::new();
        while t < end {
            fired.extend(r.due_in(t, t + Duration::minutes(5)));
            t += Duration::minutes(5);
        }
        fired
    }

    #[test]
    fn paris_spring_forward_0230_fires_once_at_0330_summer_time() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let r = once(chrono_tz::Europe::Paris, "2026-03-29", "02:30");
        assert_eq!(
            scan_around(&r, "2026-03-29"),
            vec![(date("2026-03-29"), utc("2026-03-29T01:30:00Z"))]
        );
    }

    #[test]
    fn paris_fall_back_0230_fires_once_at_the_first_0230() {
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
        let r = once(chrono_tz::Europe::Paris, "2026-10-25", "02:30");
        assert_eq!(
            scan_around(&r, "2026-10-25"),
            vec![(date("2026-10-25"), utc("2026-10-25T00:30:00Z"))]
        );
    }

    #[test]
    fn new_york_spring_forward_0230_fires_once_at_0330_daylight_time() {
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT.
        let r = once(chrono_tz::America::New_York, "2026-03-08", "02:30");
        assert_eq!(
            scan_around(&r, "2026-03-08"),
            vec![(date("2026-03-08"), utc("2026-03-08T07:30:00Z"))]
        );
    }

    #[test]
    fn new_york_fall_back_fires_once_for_the_repeated_hour_and_for_0230() {
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice, 02:30 once.
        let folded = once(chrono_tz::America::New_York, "2026-11-01", "01:30");
        assert_eq!(
            scan_around(&folded, "2026-11-01"),
            vec![(date("2026-11-01"), utc("2026-11-01T05:30:00Z"))]
        );
        let r = once(chrono_tz::America::New_York, "2026-11-01", "02:30");
        assert_eq!(
            scan_around(&r, "2026-11-01"),
            vec![(date("2026-11-01"), utc("2026-11-01T07:30:00Z"))]
        );
    }

    #[test]
    fn lead_days_move_the_notification_before_the_due_date() {
        let r = Reminder {
            lead_days: 3,
            ..once(chrono_tz::Europe::Paris, "2026-12-10", "09:00")
        };
        assert_eq!(r.notify_at(date("2026-12-10")), utc("2026-12-07T08:00:00Z"));
        assert_eq!(
            r.due_in(utc("2026-12-07T07:59:00Z"), utc("2026-12-07T08:00:00Z")),
            vec![(date("2026-12-10"), utc("2026-12-07T08:00:00Z"))]
        );
        assert!(
            r.due_in(utc("2026-12-07T08:00:00Z"), utc("2026-12-08T08:00:00Z"))
                .is_empty()
        );
    }

    #[test]
    fn a_monthly_bill_fires_once_per_month_across_a_year_of_hourly_scans() {
        let r = Reminder {
            rule: DueRule::Every(Recurring {
                amount: -1,
                cadence: Cadence::Monthly,
                anchor: date("2026-01-31"),
                end: None,
                count: None,
                business_day: BusinessDay::None,
            }),
            lead_days: 2,
            notify_time: "02:30".parse().unwrap(),
            tz: chrono_tz::Europe::Paris,
        };
        let mut t = utc("2026-01-01T00:00:00Z");
        let mut fired = Vec::new();
        while t < utc("2027-01-01T00:00:00Z") {
            fired.extend(r.due_in(t, t + Duration::hours(1)).into_iter().map(|(d, _)| d));
            t += Duration::hours(1);
        }
        assert_eq!(fired.len(), 12, "{fired:?}");
        assert_eq!(fired[1], date("2026-02-28"), "the 31st clamps to February's end");
    }
}
