// Over 400 lines: 250 of pure projection rules and, beside them, the tests that pin them to the cent.
//! The projection itself: a pure function of balances and rules, so it is tested without a
//! database and gives byte-identical output for identical input. Dates are the user's local
//! dates; money is integer minor units.
use chrono::{Datelike, Days, Months, NaiveDate, Weekday};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    Weekly,
    /// Every n weeks from the anchor (biweekly is 2).
    EveryNWeeks(u32),
    /// Two days of each month, clamped to short months (1 and 15, or 15 and 31).
    SemiMonthly(u32, u32),
    /// The anchor's day of each month, clamped: the 31st falls on Feb 28/29.
    Monthly,
    MonthlyLastDay,
    /// The anchor's date each year; Feb 29 falls on Feb 28 in common years.
    Yearly,
}

impl Cadence {
    /// From the database's columns (`cadence`, `interval_weeks`, `days_of_month`).
    pub fn from_db(name: &str, interval: Option<u32>, days: Option<&[u32]>) -> Option<Cadence> {
        Some(match name {
            "weekly" => Cadence::Weekly,
            "biweekly" => Cadence::EveryNWeeks(2),
            "every_n_weeks" => Cadence::EveryNWeeks(interval?),
            "semi_monthly" => match days? {
                [a, b] => Cadence::SemiMonthly(*a, *b),
                _ => return None,
            },
            "monthly" => Cadence::Monthly,
            "monthly_last_day" => Cadence::MonthlyLastDay,
            "yearly" => Cadence::Yearly,
            _ => return None,
        })
    }
}

/// Where a date that falls on a weekend goes. Holidays are not modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusinessDay {
    None,
    /// To the Friday before (paydays).
    Previous,
    /// To the Monday after (bills).
    Next,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurring {
    /// Income > 0, bill < 0, in minor units.
    pub amount: i64,
    pub cadence: Cadence,
    pub anchor: NaiveDate,
    pub end: Option<NaiveDate>,
    /// Stop after this many occurrences from the anchor.
    pub count: Option<u32>,
    pub business_day: BusinessDay,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOff {
    pub amount: i64,
    pub date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Day {
    pub date: NaiveDate,
    pub inflow: i64,
    pub outflow: i64,
    pub closing: i64,
}

/// Which input an occurrence came from: an index into the `items` or `one_offs` given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Source {
    Recurring(usize),
    OneOff(usize),
}

/// One occurrence booked on a day of the projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Index into `days`.
    pub day: u32,
    pub source: Source,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Projection {
    pub as_of: NaiveDate,
    pub opening: i64,
    pub days: Vec<Day>,
    /// What each day is made of, by day, then recurring items before one-offs in input order.
    pub entries: Vec<Entry>,
    pub lowest_balance: i64,
    pub lowest_date: NaiveDate,
    /// First day whose closing balance is below the user's threshold.
    pub first_shortfall: Option<NaiveDate>,
}

/// `None` only past the end of the calendar (December of chrono's last year).
fn last_day_of_month(year: i32, month: u32) -> Option<NaiveDate> {
    let first_next = if month == 12 {
        NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    first_next?.pred_opt()
}

/// Day `day` of the month `offset` months after `start`'s month, clamped to the month's end.
fn day_in_month(start: NaiveDate, offset: u32, day: u32) -> Option<NaiveDate> {
    let first = start.with_day(1)?.checked_add_months(Months::new(offset))?;
    let last = last_day_of_month(first.year(), first.month())?;
    first.with_day(day.min(last.day()))
}

fn months_between(from: NaiveDate, to: NaiveDate) -> u32 {
    let m = (to.year() - from.year()) * 12 + to.month() as i32 - from.month() as i32;
    m.max(0) as u32
}

impl Recurring {
    /// The n-th nominal occurrence (n = 0 is the first on or after the anchor).
    fn nth(&self, n: u32) -> Option<NaiveDate> {
        let a = self.anchor;
        match self.cadence {
            Cadence::Weekly => a.checked_add_days(Days::new(7 * n as u64)),
            Cadence::EveryNWeeks(k) => a.checked_add_days(Days::new((7 * k.max(1) as u64).checked_mul(n as u64)?)),
            Cadence::Monthly => a.checked_add_months(Months::new(n)),
            Cadence::Yearly => a.checked_add_months(Months::new(n.checked_mul(12)?)),
            Cadence::MonthlyLastDay => {
                let first = a.with_day(1)?.checked_add_months(Months::new(n))?;
                last_day_of_month(first.year(), first.month())
            }
            Cadence::SemiMonthly(d1, d2) => {
                // The anchor's month keeps only the days on or after the anchor.
                let first_month: Vec<NaiveDate> = [d1, d2]
                    .iter()
                    .filter_map(|d| day_in_month(a, 0, *d))
                    .filter(|d| *d >= a)
                    .collect();
                match (n as usize).checked_sub(first_month.len()) {
                    None => Some(first_month[n as usize]),
                    Some(m) => day_in_month(a, 1 + m as u32 / 2, if m % 2 == 0 { d1 } else { d2 }),
                }
            }
        }
    }

    /// An index whose occurrence is on or before `date` (or 0): skips years of history
    /// without walking them.
    fn index_before(&self, date: NaiveDate) -> u32 {
        if date <= self.anchor {
            return 0;
        }
        let days = (date - self.anchor).num_days() as u32;
        let months = months_between(self.anchor, date);
        match self.cadence {
            Cadence::Weekly => days / 7,
            Cadence::EveryNWeeks(k) => (days as u64 / (7 * k.max(1) as u64)) as u32,
            Cadence::Monthly | Cadence::MonthlyLastDay => months.saturating_sub(1),
            Cadence::Yearly => (months / 12).saturating_sub(1),
            Cadence::SemiMonthly(..) => (2 * months).saturating_sub(3),
        }
    }

    /// At the ends of the calendar a date that cannot move stays where it is.
    fn shift(&self, d: NaiveDate) -> NaiveDate {
        let back = |n| d.checked_sub_days(Days::new(n)).unwrap_or(d);
        let ahead = |n| d.checked_add_days(Days::new(n)).unwrap_or(d);
        match (self.business_day, d.weekday()) {
            (BusinessDay::Previous, Weekday::Sat) => back(1),
            (BusinessDay::Previous, Weekday::Sun) => back(2),
            (BusinessDay::Next, Weekday::Sat) => ahead(2),
            (BusinessDay::Next, Weekday::Sun) => ahead(1),
            _ => d,
        }
    }

    /// The dates this item is paid within [from, to], after the business-day rule, each
    /// occurrence once, in increasing order.
    pub fn dates_between(&self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        // A weekend shift moves a date at most two days: look that far beyond the window.
        let lo = from.checked_sub_days(Days::new(2)).unwrap_or(NaiveDate::MIN);
        let hi = to.checked_add_days(Days::new(2)).unwrap_or(NaiveDate::MAX);
        let mut out = Vec::new();
        let mut n = self.index_before(lo);
        while let Some(nominal) = self.nth(n) {
            if nominal > hi || self.end.is_some_and(|e| nominal > e) || self.count.is_some_and(|c| n >= c) {
                break;
            }
            let paid = self.shift(nominal);
            if nominal >= self.anchor && paid >= from && paid <= to {
                out.push(paid);
            }
            n += 1;
        }
        out
    }
}

/// Projects `horizon` days from `as_of`. The opening balance is the balance before `as_of`'s
/// items. Total over its whole input domain: a horizon past the end of the calendar is cut
/// there, and sums saturate instead of overflowing (the API's ranges keep both far away).
pub fn project(
    opening: i64,
    items: &[Recurring],
    one_offs: &[OneOff],
    as_of: NaiveDate,
    horizon: u32,
    threshold: i64,
) -> Projection {
    let horizon = horizon.max(1);
    let mut days: Vec<Day> = (0..horizon)
        .map_while(|i| {
            Some(Day {
                date: as_of.checked_add_days(Days::new(i as u64))?,
                inflow: 0,
                outflow: 0,
                closing: 0,
            })
        })
        .collect();
    let to = days.last().map_or(as_of, |d| d.date);
    let mut entries = Vec::new();
    let mut book = |date: NaiveDate, amount: i64, source: Source| {
        if date < as_of || date > to {
            return;
        }
        let i = (date - as_of).num_days() as usize;
        let day = &mut days[i];
        if amount >= 0 {
            day.inflow = day.inflow.saturating_add(amount);
        } else {
            day.outflow = day.outflow.saturating_sub(amount);
        }
        entries.push(Entry {
            day: i as u32,
            source,
            amount,
        });
    };
    for (i, item) in items.iter().enumerate() {
        for d in item.dates_between(as_of, to) {
            book(d, item.amount, Source::Recurring(i));
        }
    }
    for (i, o) in one_offs.iter().enumerate() {
        book(o.date, o.amount, Source::OneOff(i));
    }
    // Stable: within a day, items keep the order they were booked in.
    entries.sort_by_key(|e| e.day);
    let mut balance = opening;
    let (mut lowest_balance, mut lowest_date) = (i64::MAX, as_of);
    let mut first_shortfall = None;
    for day in &mut days {
        balance = balance.saturating_add(day.inflow).saturating_sub(day.outflow);
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
        entries,
        lowest_balance,
        lowest_date,
        first_shortfall,
    }
}

/// The net of every occurrence paid within [from, to] (0 when `from > to`), saturating.
pub fn net_between(items: &[Recurring], one_offs: &[OneOff], from: NaiveDate, to: NaiveDate) -> i64 {
    if from > to {
        return 0;
    }
    let recurring = items
        .iter()
        .flat_map(|r| r.dates_between(from, to).into_iter().map(|_| r.amount));
    let once = one_offs
        .iter()
        .filter(|o| (from..=to).contains(&o.date))
        .map(|o| o.amount);
    recurring.chain(once).fold(0i64, i64::saturating_add)
}

/// What the user's balances say, and when they were read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balances {
    /// The sum of the accounts that carry no date, if any: they stand for the projected day.
    pub undated: Option<i64>,
    /// The sum of the dated accounts, and the newest of their dates.
    pub dated: Option<(i64, NaiveDate)>,
}

/// The balance before `as_of`'s items, the projection's opening. A balance read on a day
/// holds that day's items when `include_as_of` is set (the bank had already booked them) and
/// none of them otherwise; a dated balance is then rolled to `as_of` by the items between,
/// forward or back. Dated accounts are taken to be read together, on the newest date: the
/// items belong to the user, not to one account, so each is counted once.
pub fn opening(b: Balances, items: &[Recurring], one_offs: &[OneOff], as_of: NaiveDate, include_as_of: bool) -> i64 {
    let net = |from: NaiveDate, to: NaiveDate| net_between(items, one_offs, from, to);
    let day = |d: NaiveDate| if include_as_of { net(d, d) } else { 0 };
    let mut opening = b.undated.map_or(0, |u| u.saturating_sub(day(as_of)));
    if let Some((balance, read)) = b.dated {
        let start_of_read = balance.saturating_sub(day(read));
        let rolled = match read.cmp(&as_of) {
            std::cmp::Ordering::Less => start_of_read.saturating_add(net(read, as_of.pred_opt().unwrap_or(as_of))),
            std::cmp::Ordering::Equal => start_of_read,
            std::cmp::Ordering::Greater => start_of_read.saturating_sub(net(as_of, read.pred_opt().unwrap_or(read))),
        };
        opening = opening.saturating_add(rolled);
    }
    opening
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cadence_the_catalog_names_is_read_back_and_no_other() {
        for name in nightshift_catalog::cadence::NAMES {
            assert!(Cadence::from_db(name, Some(3), Some(&[1, 15])).is_some(), "{name}");
        }
        assert_eq!(Cadence::from_db("fortnightly", Some(3), Some(&[1, 15])), None);
    }
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn item(amount: i64, cadence: Cadence, anchor: NaiveDate) -> Recurring {
        Recurring {
            amount,
            cadence,
            anchor,
            end: None,
            count: None,
            business_day: BusinessDay::None,
        }
    }

    #[test]
    fn monthly_on_the_31st_clamps_to_short_months() {
        let r = item(-999, Cadence::Monthly, d(2024, 1, 31));
        assert_eq!(
            r.dates_between(d(2024, 1, 1), d(2024, 5, 31)),
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
        let r = item(-50_000, Cadence::Yearly, d(2024, 2, 29));
        assert_eq!(r.dates_between(d(2025, 1, 1), d(2025, 12, 31)), vec![d(2025, 2, 28)]);
        assert_eq!(r.dates_between(d(2028, 1, 1), d(2028, 12, 31)), vec![d(2028, 2, 29)]);
    }

    #[test]
    fn semi_monthly_and_last_day_follow_the_calendar() {
        let semi = item(1, Cadence::SemiMonthly(15, 31), d(2025, 1, 20));
        assert_eq!(
            semi.dates_between(d(2025, 1, 1), d(2025, 3, 20)),
            vec![d(2025, 1, 31), d(2025, 2, 15), d(2025, 2, 28), d(2025, 3, 15)]
        );
        let last = item(1, Cadence::MonthlyLastDay, d(2024, 1, 10));
        assert_eq!(
            last.dates_between(d(2024, 1, 1), d(2024, 3, 31)),
            vec![d(2024, 1, 31), d(2024, 2, 29), d(2024, 3, 31)]
        );
    }

    #[test]
    fn weekend_dates_move_to_friday_for_pay_and_monday_for_bills() {
        // 2025-05-31 is a Saturday, 2025-06-01 a Sunday.
        let mut pay = item(100, Cadence::Monthly, d(2025, 1, 31));
        pay.business_day = BusinessDay::Previous;
        assert_eq!(pay.dates_between(d(2025, 5, 1), d(2025, 6, 29)), vec![d(2025, 5, 30)]);
        let mut bill = item(-100, Cadence::Monthly, d(2025, 1, 1));
        bill.business_day = BusinessDay::Next;
        assert_eq!(bill.dates_between(d(2025, 6, 1), d(2025, 6, 30)), vec![d(2025, 6, 2)]);
        // A Saturday payday just past the window's end is paid on its last day.
        assert_eq!(pay.dates_between(d(2025, 5, 1), d(2025, 5, 30)), vec![d(2025, 5, 30)]);
    }

    #[test]
    fn counts_and_end_dates_stop_an_item() {
        let mut r = item(-10, Cadence::Weekly, d(2025, 1, 6));
        r.count = Some(3);
        assert_eq!(
            r.dates_between(d(2025, 1, 1), d(2025, 3, 1)),
            vec![d(2025, 1, 6), d(2025, 1, 13), d(2025, 1, 20)]
        );
        r.count = None;
        r.end = Some(d(2025, 1, 14));
        assert_eq!(
            r.dates_between(d(2025, 1, 1), d(2025, 3, 1)),
            vec![d(2025, 1, 6), d(2025, 1, 13)]
        );
    }

    #[test]
    fn a_month_with_rent_and_biweekly_salary_matches_hand_computed_balances() {
        // Opening 1,000.00; rent 900.00 on the 1st; salary 1,200.00 every other Friday from Jan 5.
        let items = [
            item(-90_000, Cadence::Monthly, d(2024, 1, 1)),
            item(120_000, Cadence::EveryNWeeks(2), d(2024, 1, 5)),
        ];
        let p = project(
            100_000,
            &items,
            &[OneOff {
                amount: -5_000,
                date: d(2024, 2, 20),
            }],
            d(2024, 2, 1),
            29,
            20_000,
        );
        let closing = |day: u32| p.days[(day - 1) as usize].closing;
        assert_eq!(closing(1), 10_000); // rent on Feb 1
        assert_eq!(closing(2), 130_000); // salary Feb 2
        assert_eq!(closing(16), 250_000); // salary Feb 16
        assert_eq!(closing(20), 245_000); // one-off
        assert_eq!(closing(29), 245_000);
        assert_eq!((p.lowest_balance, p.lowest_date), (10_000, d(2024, 2, 1)));
        assert_eq!(p.first_shortfall, Some(d(2024, 2, 1)));
    }

    #[test]
    fn each_day_lists_the_items_that_made_it() {
        let items = [
            item(-90_000, Cadence::Monthly, d(2024, 1, 1)),
            item(120_000, Cadence::EveryNWeeks(2), d(2024, 1, 5)),
        ];
        let one_offs = [OneOff {
            amount: -5_000,
            date: d(2024, 2, 2),
        }];
        let p = project(0, &items, &one_offs, d(2024, 2, 1), 3, 0);
        let e = |day, source, amount| Entry { day, source, amount };
        assert_eq!(
            p.entries,
            vec![
                e(0, Source::Recurring(0), -90_000),
                e(1, Source::Recurring(1), 120_000),
                e(1, Source::OneOff(0), -5_000),
            ]
        );
    }

    #[test]
    fn a_balance_read_on_another_day_is_rolled_to_as_of() {
        // Salary 1,000.00 on the 1st of each month, rent 600.00 on the 3rd.
        let items = [
            item(100_000, Cadence::Monthly, d(2025, 1, 1)),
            item(-60_000, Cadence::Monthly, d(2025, 1, 3)),
        ];
        let at = |read, include| {
            let b = Balances {
                undated: None,
                dated: Some((500_000, read)),
            };
            opening(b, &items, &[], d(2025, 3, 3), include)
        };
        // Read on Mar 1 before its salary: the salary and nothing else comes before Mar 3.
        assert_eq!(at(d(2025, 3, 1), false), 600_000);
        // Read on Mar 1 with the salary in: nothing to add.
        assert_eq!(at(d(2025, 3, 1), true), 500_000);
        // Read on Mar 3 with the rent in: the opening is before the rent.
        assert_eq!(at(d(2025, 3, 3), true), 560_000);
        assert_eq!(at(d(2025, 3, 3), false), 500_000);
        // Read on Mar 10, after both: rolled back over the rent (Mar 3) only.
        assert_eq!(at(d(2025, 3, 10), false), 560_000);
        // An undated balance is the opening, or its closing with include_as_of.
        let undated = |include| {
            opening(
                Balances {
                    undated: Some(500_000),
                    dated: None,
                },
                &items,
                &[],
                d(2025, 3, 3),
                include,
            )
        };
        assert_eq!((undated(false), undated(true)), (500_000, 560_000));
    }

    fn cadence() -> impl Strategy<Value = Cadence> {
        prop_oneof![
            Just(Cadence::Weekly),
            (1u32..9).prop_map(Cadence::EveryNWeeks),
            (1u32..16, 16u32..32).prop_map(|(a, b)| Cadence::SemiMonthly(a, b)),
            Just(Cadence::Monthly),
            Just(Cadence::MonthlyLastDay),
            Just(Cadence::Yearly),
        ]
    }

    fn business_day() -> impl Strategy<Value = BusinessDay> {
        prop_oneof![
            Just(BusinessDay::None),
            Just(BusinessDay::Previous),
            Just(BusinessDay::Next)
        ]
    }

    fn arb_item() -> impl Strategy<Value = Recurring> {
        (
            -1_000_000i64..1_000_000,
            cadence(),
            0u32..2000,
            business_day(),
            proptest::option::of(1u32..60),
        )
            .prop_map(|(amount, cadence, off, business_day, count)| Recurring {
                amount: if amount == 0 { 1 } else { amount },
                cadence,
                anchor: d(2020, 1, 1) + Days::new(off as u64),
                end: None,
                count,
                business_day,
            })
    }

    /// Any date chrono can hold, its two ends more often than chance would pick them.
    fn any_date() -> impl Strategy<Value = NaiveDate> {
        let (min, max) = (NaiveDate::MIN.num_days_from_ce(), NaiveDate::MAX.num_days_from_ce());
        prop_oneof![
            Just(NaiveDate::MIN),
            Just(NaiveDate::MAX),
            (min..=max).prop_map(|n| NaiveDate::from_num_days_from_ce_opt(n).unwrap()),
            (0i32..800).prop_map(move |n| NaiveDate::from_num_days_from_ce_opt(max - n).unwrap()),
            (0i32..800).prop_map(move |n| NaiveDate::from_num_days_from_ce_opt(min + n).unwrap()),
        ]
    }

    fn any_item() -> impl Strategy<Value = Recurring> {
        let cadence = prop_oneof![
            Just(Cadence::Weekly),
            any::<u32>().prop_map(Cadence::EveryNWeeks),
            (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Cadence::SemiMonthly(a, b)),
            Just(Cadence::Monthly),
            Just(Cadence::MonthlyLastDay),
            Just(Cadence::Yearly),
        ];
        (
            any::<i64>(),
            cadence,
            any_date(),
            proptest::option::of(any_date()),
            proptest::option::of(any::<u32>()),
            business_day(),
        )
            .prop_map(|(amount, cadence, anchor, end, count, business_day)| Recurring {
                amount,
                cadence,
                anchor,
                end,
                count,
                business_day,
            })
    }

    /// Every nominal occurrence by walking from the anchor, the slow obvious way.
    fn walk(r: &Recurring, to: NaiveDate) -> Vec<NaiveDate> {
        (0..)
            .map_while(|n| r.nth(n).filter(|x| *x <= to).filter(|_| r.count.is_none_or(|c| n < c)))
            .collect()
    }

    proptest! {
        #[test]
        fn balance_is_conserved_every_day(opening in -10_000_000i64..10_000_000, items in proptest::collection::vec(arb_item(), 0..12), off in 0u32..2000, horizon in 1u32..367) {
            let as_of = d(2020, 1, 1) + Days::new(off as u64);
            let p = project(opening, &items, &[], as_of, horizon, 0);
            let mut prev = opening;
            for day in &p.days {
                prop_assert_eq!(day.closing, prev + day.inflow - day.outflow);
                prev = day.closing;
            }
            prop_assert_eq!(p.clone(), project(opening, &items, &[], as_of, horizon, 0));
        }

        #[test]
        fn each_occurrence_is_paid_once_inside_the_window(r in arb_item(), off in 0u32..3000, len in 0u32..800) {
            let from = d(2020, 1, 1) + Days::new(off as u64);
            let to = from + Days::new(len as u64);
            let fast = r.dates_between(from, to);
            let slow: Vec<NaiveDate> = walk(&r, to + Days::new(2)).into_iter().map(|n| r.shift(n)).filter(|p| *p >= from && *p <= to).collect();
            prop_assert_eq!(&fast, &slow);
            prop_assert!(fast.windows(2).all(|w| w[0] <= w[1]));
        }

        /// Whatever the engine is given, from anywhere in chrono's calendar and the full range
        /// of every number, it returns a projection: no panic, no overflow.
        #[test]
        fn project_is_total_over_its_whole_input_domain(
            opening in any::<i64>(),
            items in proptest::collection::vec(any_item(), 0..6),
            one_offs in proptest::collection::vec((any_date(), any::<i64>()), 0..4),
            as_of in any_date(),
            horizon in 0u32..=400,
            threshold in any::<i64>(),
        ) {
            let one_offs: Vec<OneOff> = one_offs.into_iter().map(|(date, amount)| OneOff { date, amount }).collect();
            let p = project(opening, &items, &one_offs, as_of, horizon, threshold);
            prop_assert!(p.days.len() <= horizon.max(1) as usize);
        }

        /// Whatever day a balance was read on, the projection from it closes each day on the
        /// same balance as a projection from the read day itself.
        #[test]
        fn a_rolled_balance_closes_each_day_as_if_projected_from_the_read_day(
            balance in -10_000_000i64..10_000_000,
            items in proptest::collection::vec(arb_item(), 0..8),
            read_off in 0u32..1000,
            as_of_off in 0u32..1000,
            include in any::<bool>(),
        ) {
            let read = d(2021, 1, 1) + Days::new(read_off as u64);
            let as_of = d(2021, 1, 1) + Days::new(as_of_off as u64);
            let b = Balances { undated: None, dated: Some((balance, read)) };
            let from_read = project(opening(b, &items, &[], read, include), &items, &[], read, 366, 0);
            let from_as_of = project(opening(b, &items, &[], as_of, include), &items, &[], as_of, 366, 0);
            for day in &from_as_of.days {
                if let Some(same) = from_read.days.iter().find(|x| x.date == day.date) {
                    prop_assert_eq!(same.closing, day.closing, "{}", day.date);
                }
            }
            // The read day closes on the balance read, when it holds its own items.
            if include {
                prop_assert_eq!(from_read.days[0].closing, balance);
            }
        }

        #[test]
        fn nominal_dates_strictly_increase(r in arb_item()) {
            let dates = walk(&r, r.anchor + Days::new(3000));
            prop_assert!(dates.windows(2).all(|w| w[0] < w[1]), "{:?}", dates);
            prop_assert!(dates.iter().all(|x| *x >= r.anchor));
        }
    }
}
