//! The projection itself: a pure function of balances and rules, so it is tested without a
//! database and gives byte-identical output for identical input.
use chrono::{Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cadence {
    Weekly,
    Biweekly,
    Monthly,
    Yearly,
}

impl Cadence {
    pub fn parse(s: &str) -> Option<Cadence> {
        match s {
            "weekly" => Some(Cadence::Weekly),
            "biweekly" => Some(Cadence::Biweekly),
            "monthly" => Some(Cadence::Monthly),
            "yearly" => Some(Cadence::Yearly),
            _ => None,
        }
    }
}

/// A recurring income (amount > 0) or bill (amount < 0), in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurring {
    pub amount: i64,
    pub cadence: Cadence,
    pub anchor: NaiveDate,
    pub end: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Day {
    pub date: NaiveDate,
    pub inflow: i64,
    pub outflow: i64,
    pub closing: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Projection {
    pub as_of: NaiveDate,
    pub opening: i64,
    pub days: Vec<Day>,
    pub lowest_balance: i64,
    pub lowest_date: NaiveDate,
    /// First day whose closing balance is below the user's threshold.
    pub first_shortfall: Option<NaiveDate>,
}

/// The `n`-th occurrence of a rule (n = 0 is the anchor). Monthly and yearly dates clamp to
/// the end of short months: the 31st falls on Feb 28/29, Feb 29 on Feb 28 in other years.
fn occurrence(r: &Recurring, n: u32) -> Option<NaiveDate> {
    match r.cadence {
        Cadence::Weekly => r.anchor.checked_add_days(Days::new(7 * n as u64)),
        Cadence::Biweekly => r.anchor.checked_add_days(Days::new(14 * n as u64)),
        Cadence::Monthly => r.anchor.checked_add_months(Months::new(n)),
        Cadence::Yearly => r.anchor.checked_add_months(Months::new(12 * n)),
    }
}

/// Dates of a rule within [from, to], in increasing order.
pub fn occurrences(r: &Recurring, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    let last = r.end.map_or(to, |e| e.min(to));
    // Skip ahead instead of walking from an anchor years in the past.
    let start_n = if from > r.anchor {
        let days = (from - r.anchor).num_days() as u32;
        match r.cadence {
            Cadence::Weekly => days / 7,
            Cadence::Biweekly => days / 14,
            Cadence::Monthly => (days / 31).saturating_sub(1),
            Cadence::Yearly => (days / 366).saturating_sub(1),
        }
    } else {
        0
    };
    let mut out = Vec::new();
    let mut n = start_n;
    while let Some(d) = occurrence(r, n) {
        if d > last {
            break;
        }
        if d >= from {
            out.push(d);
        }
        n += 1;
    }
    out
}

/// Projects `horizon` days starting at `as_of`. The opening balance is the balance before
/// `as_of`'s items.
pub fn project(opening: i64, items: &[Recurring], as_of: NaiveDate, horizon: u32, threshold: i64) -> Projection {
    let horizon = horizon.max(1);
    let to = as_of + Days::new(horizon as u64 - 1);
    let mut days: Vec<Day> = (0..horizon)
        .map(|i| Day {
            date: as_of + Days::new(i as u64),
            inflow: 0,
            outflow: 0,
            closing: 0,
        })
        .collect();
    for item in items {
        for d in occurrences(item, as_of, to) {
            let day = &mut days[(d - as_of).num_days() as usize];
            if item.amount >= 0 {
                day.inflow += item.amount;
            } else {
                day.outflow += -item.amount;
            }
        }
    }
    let mut balance = opening;
    let (mut lowest_balance, mut lowest_date) = (i64::MAX, as_of);
    let mut first_shortfall = None;
    for day in &mut days {
        balance += day.inflow - day.outflow;
        day.closing = balance;
        if balance < lowest_balance {
            (lowest_balance, lowest_date) = (balance, day.date);
        }
        if balance < threshold && first_shortfall.is_none() {
            first_shortfall = Some(day.date);
        }
    }
    Projection {
        as_of,
        opening,
        days,
        lowest_balance,
        lowest_date,
        first_shortfall,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn monthly_on_the_31st_clamps_to_short_months() {
        let r = Recurring {
            amount: -999,
            cadence: Cadence::Monthly,
            anchor: d(2024, 1, 31),
            end: None,
        };
        assert_eq!(
            occurrences(&r, d(2024, 1, 1), d(2024, 5, 31)),
            vec![
                d(2024, 1, 31),
                d(2024, 2, 29),
                d(2024, 3, 31),
                d(2024, 4, 30),
                d(2024, 5, 31)
            ]
        );
    }

    #[test]
    fn yearly_on_feb_29_falls_on_feb_28_in_common_years() {
        let r = Recurring {
            amount: -50_000,
            cadence: Cadence::Yearly,
            anchor: d(2024, 2, 29),
            end: None,
        };
        assert_eq!(occurrences(&r, d(2025, 1, 1), d(2025, 12, 31)), vec![d(2025, 2, 28)]);
        assert_eq!(occurrences(&r, d(2028, 1, 1), d(2028, 12, 31)), vec![d(2028, 2, 29)]);
    }

    #[test]
    fn a_month_with_rent_and_biweekly_salary_matches_hand_computed_balances() {
        // Opening 1,000.00; rent 900.00 on the 1st; salary 1,200.00 every other Friday from Jan 5.
        let items = [
            Recurring {
                amount: -90_000,
                cadence: Cadence::Monthly,
                anchor: d(2024, 1, 1),
                end: None,
            },
            Recurring {
                amount: 120_000,
                cadence: Cadence::Biweekly,
                anchor: d(2024, 1, 5),
                end: None,
            },
        ];
        let p = project(100_000, &items, d(2024, 2, 1), 29, 20_000);
        let closing = |day: u32| p.days[(day - 1) as usize].closing;
        assert_eq!(closing(1), 10_000); // rent on Feb 1
        assert_eq!(closing(2), 130_000); // salary Feb 2
        assert_eq!(closing(16), 250_000); // salary Feb 16
        assert_eq!(closing(29), 250_000);
        assert_eq!(p.lowest_balance, 10_000);
        assert_eq!(p.lowest_date, d(2024, 2, 1));
        assert_eq!(p.first_shortfall, Some(d(2024, 2, 1)));
    }

    fn cadence() -> impl Strategy<Value = Cadence> {
        prop_oneof![
            Just(Cadence::Weekly),
            Just(Cadence::Biweekly),
            Just(Cadence::Monthly),
            Just(Cadence::Yearly)
        ]
    }

    fn item() -> impl Strategy<Value = Recurring> {
        (-1_000_000i64..1_000_000, cadence(), 0u32..2000).prop_map(|(amount, cadence, off)| Recurring {
            amount: if amount == 0 { 1 } else { amount },
            cadence,
            anchor: d(2020, 1, 1) + Days::new(off as u64),
            end: None,
        })
    }

    proptest! {
        #[test]
        fn balance_is_conserved_every_day(opening in -10_000_000i64..10_000_000, items in proptest::collection::vec(item(), 0..12), off in 0u32..2000, horizon in 1u32..366) {
            let as_of = d(2020, 1, 1) + Days::new(off as u64);
            let p = project(opening, &items, as_of, horizon, 0);
            let mut prev = opening;
            for day in &p.days {
                prop_assert_eq!(day.closing, prev + day.inflow - day.outflow);
                prev = day.closing;
            }
            let total: i64 = items.iter().map(|i| i.amount * occurrences(i, as_of, p.days.last().unwrap().date).len() as i64).sum();
            prop_assert_eq!(prev, opening + total);
            prop_assert_eq!(p.clone(), project(opening, &items, as_of, horizon, 0));
        }

        #[test]
        fn occurrences_strictly_increase_and_stay_in_range(r in item(), off in 0u32..3000, len in 0u32..800) {
            let from = d(2020, 1, 1) + Days::new(off as u64);
            let to = from + Days::new(len as u64);
            let dates = occurrences(&r, from, to);
            prop_assert!(dates.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(dates.iter().all(|x| *x >= from && *x <= to));
        }
    }
}
