//! Grandfather-father-son retention as borg and restic define it: for each rule, the newest
//! backup of each of the last N periods (UTC days, ISO weeks, months) that have a backup. A
//! backup kept by any rule is kept. Pure, so 400 simulated days run in a unit test.
use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            daily: 7,
            weekly: 4,
            monthly: 12,
        }
    }
}

/// A period a backup falls in: (year, day of year / ISO week / month).
type Period = fn(&DateTime<Utc>) -> (i32, u32);

/// The backups to keep among `backups` (id, taken at); the newest is always kept.
pub fn keep<Id: Ord + Clone>(backups: &[(Id, DateTime<Utc>)], policy: Retention) -> BTreeSet<Id> {
    let mut newest_first: Vec<&(Id, DateTime<Utc>)> = backups.iter().collect();
    newest_first.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let mut kept = BTreeSet::new();
    if let Some((id, _)) = newest_first.first() {
        kept.insert(id.clone());
    }
    let rules: [(u32, Period); 3] = [
        (policy.daily, |t| (t.year(), t.ordinal())),
        (policy.weekly, |t| (t.iso_week().year(), t.iso_week().week())),
        (policy.monthly, |t| (t.year(), t.month())),
    ];
    for (n, period) in rules {
        let mut last = None;
        let mut count = 0;
        for (id, at) in &newest_first {
            if count == n {
                break;
            }
            let p = period(at);
            if last != Some(p) {
                last = Some(p);
                count += 1;
                kept.insert(id.clone());
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, NaiveDate, TimeZone};

    use super::*;

    fn at(date: NaiveDate, hour: u32) -> DateTime<Utc> {
        Utc.from_utc_datetime(&date.and_hms_opt(hour, 0, 0).unwrap())
    }

    /// Takes `per_day` backups a day for `days` days from `start`, pruning after each as the
    /// job does, and returns the dates of what is left.
    fn simulate(start: NaiveDate, days: i64, per_day: u32, policy: Retention) -> Vec<(NaiveDate, u32)> {
        let mut stored: Vec<((NaiveDate, u32), DateTime<Utc>)> = Vec::new();
        for d in 0..days {
            let date = start + Duration::days(d);
            for i in 0..per_day {
                stored.push(((date, i), at(date, 1 + i)));
                let kept = keep(&stored, policy);
                stored.retain(|(id, _)| kept.contains(id));
            }
        }
        let mut left: Vec<_> = stored.into_iter().map(|(id, _)| id).collect();
        left.sort();
        left
    }

    fn dates(list: &[&str]) -> Vec<NaiveDate> {
        list.iter().map(|d| d.parse().unwrap()).collect()
    }

    #[test]
    fn four_hundred_days_of_nightly_backups_keep_7_daily_4_weekly_12_monthly() {
        // 2025-10-20 to 2026-11-23, a Monday.
        let left = simulate("2025-10-20".parse().unwrap(), 400, 1, Retention::default());
        let expected = dates(&[
            // Monthly: the last backup of each of the 12 months up to November 2026 (whose
            // newest is today's, also a daily).
            "2025-12-31",
            "2026-01-31",
            "2026-02-28",
            "2026-03-31",
            "2026-04-30",
            "2026-05-31",
            "2026-06-30",
            "2026-07-31",
            "2026-08-31",
            "2026-09-30",
            "2026-10-31",
            // Weekly: the Sundays ending the ISO weeks before this one (the 22nd is also a daily).
            "2026-11-08",
            "2026-11-15",
            // Daily: the last seven days.
            "2026-11-17",
            "2026-11-18",
            "2026-11-19",
            "2026-11-20",
            "2026-11-21",
            "2026-11-22",
            "2026-11-23",
        ]);
        assert_eq!(left.iter().map(|(d, _)| *d).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn several_backups_a_day_keep_only_the_newest_of_each_day_but_the_newest_overall() {
        let policy = Retention {
            daily: 3,
            weekly: 0,
            monthly: 0,
        };
        let left = simulate("2026-03-01".parse().unwrap(), 10, 3, policy);
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            left,
            vec![(d("2026-03-08"), 2), (d("2026-03-09"), 2), (d("2026-03-10"), 2)]
        );
    }

    #[test]
    fn pruning_every_day_keeps_what_pruning_once_at_the_end_keeps() {
        let start: NaiveDate = "2025-01-01".parse().unwrap();
        let policy = Retention {
            daily: 5,
            weekly: 6,
            monthly: 7,
        };
        let all: Vec<_> = (0..400).map(|d| (d, at(start + Duration::days(d), 2))).collect();
        let once: Vec<_> = keep(&all, policy).into_iter().collect();
        let daily: Vec<_> = simulate(start, 400, 1, policy)
            .into_iter()
            .map(|(date, _)| (date - start).num_days())
            .collect();
        assert_eq!(once, daily);
        // To Wednesday 2026-02-04: 5 days from 31 January; 4 more Sundays (1 February is one
        // of the days); 5 more month ends (31 January is one of the days).
        assert_eq!(once.len(), 5 + 4 + 5);
    }

    #[test]
    fn the_newest_backup_is_kept_even_with_every_rule_at_zero() {
        let policy = Retention {
            daily: 0,
            weekly: 0,
            monthly: 0,
        };
        let t = at("2026-01-01".parse().unwrap(), 0);
        let kept = keep(
            &[(1, t), (2, t + Duration::hours(1)), (3, t - Duration::days(40))],
            policy,
        );
        assert_eq!(kept.into_iter().collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn nothing_to_keep_from_nothing() {
        assert!(keep::<u32>(&[], Retention::default()).is_empty());
    }
}
