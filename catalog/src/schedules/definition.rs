// Over 400 lines: 280 of file format and cron maths and, beside them, the tests that pin each DST and misfire case.
//! Schedules: the file format, its defaults and checks, and the cron maths that decide which
//! ticks are due, missed or coalesced. Pure: nothing here touches Redis or PostgreSQL.
use std::{path::Path, str::FromStr, time::Duration};

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use cron::TimeUnitSpec;
use serde::Deserialize;
use serde_json::Value;

use super::{ScheduleError, TickOutcome};

/// The default schedules, compiled in; `NIGHTSHIFT_SCHEDULES_FILE` replaces them.
const DEFAULTS: &str = include_str!("../../schedules.toml");
/// Most missed ticks examined per schedule and pass (a per-second schedule down for hours).
const MAX_MISSED: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Misfire {
    Skip,
    RunOnce,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleSpec {
    name: String,
    cron: String,
    #[serde(default = "utc")]
    time_zone: String,
    kind: String,
    #[serde(default)]
    payload: Option<toml::Table>,
    misfire: Misfire,
    #[serde(default = "hour")]
    misfire_window_secs: u64,
    /// A tick handled later than this counts as misfired.
    #[serde(default = "minute")]
    misfire_grace_secs: u64,
    /// `false`: a tick whose previous run has not finished is not run (recorded as overlapped).
    #[serde(default = "yes")]
    allow_overlap: bool,
    /// Spread each run over this many seconds after its tick, so schedules sharing a minute
    /// do not all start at once.
    #[serde(default)]
    jitter_secs: u64,
}

fn yes() -> bool {
    true
}

fn utc() -> String {
    "UTC".into()
}
fn hour() -> u64 {
    3600
}
fn minute() -> u64 {
    60
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    #[serde(default)]
    schedule: Vec<ScheduleSpec>,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub cron: cron::Schedule,
    pub tz: Tz,
    pub kind: String,
    pub payload: Value,
    pub misfire: Misfire,
    pub misfire_window: Duration,
    pub misfire_grace: Duration,
    pub allow_overlap: bool,
    pub jitter: Duration,
}

impl Schedule {
    pub fn new(name: &str, expr: &str, tz: Tz, kind: &str, payload: Value) -> Result<Self, ScheduleError> {
        let cron = cron::Schedule::from_str(expr).map_err(|e| ScheduleError::Cron {
            name: name.into(),
            expr: expr.into(),
            reason: e.to_string(),
        })?;
        if crate::find(kind).is_none() {
            return Err(ScheduleError::UnknownKind {
                name: name.into(),
                kind: kind.into(),
            });
        }
        Ok(Schedule {
            name: name.into(),
            cron,
            tz,
            kind: kind.into(),
            payload,
            misfire: Misfire::Skip,
            misfire_window: Duration::from_secs(hour()),
            misfire_grace: Duration::from_secs(minute()),
            allow_overlap: true,
            jitter: Duration::ZERO,
        })
    }

    /// How long after `tick` its job runs: in [0, jitter), from a hash of (name, tick), so
    /// every replica computes the same delay for a tick and different ticks spread out.
    pub fn jitter_for(&self, tick: DateTime<Utc>) -> Duration {
        let ms = self.jitter.as_millis() as u64;
        if ms == 0 {
            return Duration::ZERO;
        }
        // FNV-1a: stable across processes and releases, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.tick_key(tick).bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Duration::from_millis(h % ms)
    }

    /// Ticks in (after, until], oldest first, at most `MAX_MISSED` of the newest.
    pub fn ticks_between(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut ticks = self.all_ticks(after, until);
        if ticks.len() > MAX_MISSED {
            ticks.drain(..ticks.len() - MAX_MISSED);
        }
        ticks
    }

    pub fn next_tick(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Widening windows: a per-second schedule is answered from a minute's ticks, a yearly
        // one from a year's (the cron has nothing past its last year).
        [
            Duration::from_secs(60),
            Duration::from_secs(86_400),
            Duration::from_secs(400 * 86_400),
        ]
        .into_iter()
        .find_map(|w| {
            let until = after + chrono::Duration::from_std(w).ok()?;
            self.all_ticks(after, until).first().copied()
        })
    }

    /// Every tick in (after, until], in order: the cron read on the schedule's wall clock, each
    /// local time it names turned into instants by [`Self::instants`].
    fn all_ticks(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let (from, to) = self.local_span(after, until);
        let mut ticks = Vec::new();
        // The cron is read on naive local times (as if UTC, which has no transitions), so a
        // repeated or skipped local hour is ours to resolve, not the crate's.
        for local in self
            .cron
            .after(&from.and_utc())
            .map(|t| t.naive_utc())
            .take_while(|l| *l <= to)
        {
            ticks.extend(self.instants(local).into_iter().filter(|t| *t > after && *t <= until));
        }
        ticks.sort_unstable();
        ticks.dedup();
        ticks
    }

    /// The local times whose instants can fall in (after, until]: the window read on the wall
    /// clock, widened by a few hours where the zone's offset changes in or near it (a repeated
    /// hour's second pass reads earlier on the wall than the window's start).
    fn local_span(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> (NaiveDateTime, NaiveDateTime) {
        let local = |t: DateTime<Utc>| t.with_timezone(&self.tz).naive_local();
        let offset = |t: DateTime<Utc>| self.tz.offset_from_utc_datetime(&t.naive_utc()).fix();
        let margin = chrono::Duration::hours(3);
        let steady = until - after < chrono::Duration::days(1) && offset(after - margin) == offset(until + margin);
        if steady {
            (local(after), local(until))
        } else {
            (local(after) - margin, local(until) + margin)
        }
    }

    /// The instants one local time of the schedule names (README, "Schedules and DST"). A
    /// schedule with fixed hours names wall-clock times: each fires once, by the reminders'
    /// rule (`zone::resolve`: a time in the spring-forward gap moves forward by the gap, a
    /// repeated time fires at its first pass). A schedule for every hour (hourly, sub-hourly)
    /// keeps its real-time spacing: every instant whose local time matches, both passes of a
    /// repeated hour, none in a gap.
    fn instants(&self, local: NaiveDateTime) -> Vec<DateTime<Utc>> {
        if !self.cron.hours().is_all() {
            return vec![nightshift_common::zone::resolve(self.tz, local)];
        }
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
            LocalResult::Ambiguous(first, second) => vec![first.with_timezone(&Utc), second.with_timezone(&Utc)],
            LocalResult::None => Vec::new(),
        }
    }

    /// The idempotency key of one tick: equal on every replica.
    pub fn tick_key(&self, tick: DateTime<Utc>) -> String {
        format!("schedule:{}:{}", self.name, tick.timestamp())
    }

    /// What to do with the unrecorded ticks due, oldest first, handled at `now`: how each is
    /// recorded and which run. A tick within the grace period fires; the misfire policy
    /// applies to older ones only. Pure, so the policy is unit-tested.
    pub fn decide(&self, due: &[DateTime<Utc>], now: DateTime<Utc>) -> Vec<(DateTime<Utc>, TickOutcome)> {
        let age = |t: DateTime<Utc>| (now - t).to_std().unwrap_or_default();
        let (late, on_time) = due.split_at(due.partition_point(|t| age(*t) > self.misfire_grace));
        let mut out: Vec<(DateTime<Utc>, TickOutcome)> = Vec::with_capacity(due.len());
        match (self.misfire, late.split_last()) {
            (_, None) => {}
            (Misfire::Skip, Some(_)) => out.extend(late.iter().map(|t| (*t, TickOutcome::Skipped))),
            (Misfire::RunOnce, Some((&latest, earlier))) => {
                let within = age(latest) <= self.misfire_window;
                let merged = if within {
                    TickOutcome::Coalesced
                } else {
                    TickOutcome::Skipped
                };
                out.extend(earlier.iter().map(|t| (*t, merged)));
                // The latest missed tick runs late, unless a tick on time runs now anyway.
                out.push((
                    latest,
                    match (within, on_time.is_empty()) {
                        (false, _) => TickOutcome::Skipped,
                        (true, true) => TickOutcome::FiredLate,
                        (true, false) => TickOutcome::Coalesced,
                    },
                ));
            }
        }
        out.extend(on_time.iter().map(|t| (*t, TickOutcome::Fired)));
        out
    }
}

fn build(spec: ScheduleSpec) -> Result<Schedule, ScheduleError> {
    let tz: Tz = spec.time_zone.parse().map_err(|_| ScheduleError::TimeZone {
        name: spec.name.clone(),
        zone: spec.time_zone.clone(),
    })?;
    let payload = match spec.payload {
        Some(t) => serde_json::to_value(t).unwrap_or(Value::Null),
        None => serde_json::json!({}),
    };
    let mut s = Schedule::new(&spec.name, &spec.cron, tz, &spec.kind, payload)?;
    s.misfire = spec.misfire;
    s.misfire_window = Duration::from_secs(spec.misfire_window_secs);
    s.misfire_grace = Duration::from_secs(spec.misfire_grace_secs);
    s.allow_overlap = spec.allow_overlap;
    s.jitter = Duration::from_secs(spec.jitter_secs);
    Ok(s)
}

pub fn parse_schedules(text: &str, path: &str) -> Result<Vec<Schedule>, ScheduleError> {
    let file: ScheduleFile = toml::from_str(text).map_err(|e| ScheduleError::File {
        path: path.into(),
        reason: e.to_string(),
    })?;
    file.schedule.into_iter().map(build).collect()
}

/// The schedules from `NIGHTSHIFT_SCHEDULES_FILE`, or the defaults compiled in.
pub fn load() -> Result<Vec<Schedule>, ScheduleError> {
    match std::env::var("NIGHTSHIFT_SCHEDULES_FILE") {
        Ok(path) if !path.trim().is_empty() => {
            let text = std::fs::read_to_string(Path::new(&path)).map_err(|e| ScheduleError::File {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            parse_schedules(&text, &path)
        }
        _ => parse_schedules(DEFAULTS, "catalog/schedules.toml"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, h, m, s).unwrap()
    }

    fn every_5_min(misfire: Misfire) -> Schedule {
        let mut s = Schedule::new("t", "0 */5 * * * *", Tz::UTC, "noop", json!({})).unwrap();
        s.misfire = misfire;
        s
    }

    #[test]
    fn an_on_time_tick_fires() {
        let s = every_5_min(Misfire::Skip);
        let due = s.ticks_between(t(10, 0, 0), t(10, 5, 1));
        assert_eq!(s.decide(&due, t(10, 5, 1)), vec![(t(10, 5, 0), TickOutcome::Fired)]);
    }

    #[test]
    fn after_downtime_skip_records_every_missed_tick_and_runs_none() {
        let s = every_5_min(Misfire::Skip);
        let now = t(10, 17, 0);
        let decided = s.decide(&s.ticks_between(t(10, 0, 0), now), now);
        assert_eq!(
            decided,
            vec![
                (t(10, 5, 0), TickOutcome::Skipped),
                (t(10, 10, 0), TickOutcome::Skipped),
                (t(10, 15, 0), TickOutcome::Skipped)
            ]
        );
    }

    #[test]
    fn after_downtime_run_once_fires_the_latest_late_and_coalesces_the_rest() {
        let s = every_5_min(Misfire::RunOnce);
        let now = t(10, 17, 0);
        let decided = s.decide(&s.ticks_between(t(10, 0, 0), now), now);
        assert_eq!(
            decided,
            vec![
                (t(10, 5, 0), TickOutcome::Coalesced),
                (t(10, 10, 0), TickOutcome::Coalesced),
                (t(10, 15, 0), TickOutcome::FiredLate)
            ]
        );
        // Beyond the window, nothing runs.
        let mut narrow = s.clone();
        narrow.misfire_window = Duration::from_secs(60);
        assert!(
            narrow
                .decide(&s.ticks_between(t(10, 0, 0), now), now)
                .iter()
                .all(|(_, o)| *o == TickOutcome::Skipped)
        );
    }

    #[test]
    fn paris_ticks_follow_the_dst_change() {
        // 02:30 local does not exist on 2026-03-29 in Paris; 03:00 local is 01:00 UTC that day.
        let s = Schedule::new("p", "0 0 3 * * *", "Europe/Paris".parse().unwrap(), "noop", json!({})).unwrap();
        let ticks = s.ticks_between(
            Utc.with_ymd_and_hms(2026, 3, 27, 12, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 30, 12, 0, 0).unwrap(),
        );
        assert_eq!(
            ticks,
            vec![
                Utc.with_ymd_and_hms(2026, 3, 28, 2, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(2026, 3, 30, 1, 0, 0).unwrap(),
            ]
        );
    }

    #[test]
    fn unrecorded_ticks_within_the_grace_all_fire_and_only_older_ones_meet_the_policy() {
        // At 01:10:30 with a 60 s grace: 01:05 and 01:00 are late, 01:10 is on time.
        let due = [t(1, 0, 0), t(1, 5, 0), t(1, 10, 0)];
        let now = t(1, 10, 30);
        assert_eq!(
            every_5_min(Misfire::Skip).decide(&due, now),
            vec![
                (due[0], TickOutcome::Skipped),
                (due[1], TickOutcome::Skipped),
                (due[2], TickOutcome::Fired)
            ]
        );
        assert_eq!(
            every_5_min(Misfire::RunOnce).decide(&due, now),
            vec![
                (due[0], TickOutcome::Coalesced),
                (due[1], TickOutcome::Coalesced),
                (due[2], TickOutcome::Fired)
            ]
        );
        // Two ticks a replica has not seen recorded, both within the grace: both run.
        let mut s = every_5_min(Misfire::Skip);
        s.misfire_grace = Duration::from_secs(600);
        assert_eq!(
            s.decide(&due[1..], now),
            vec![(due[1], TickOutcome::Fired), (due[2], TickOutcome::Fired)]
        );
    }

    #[test]
    fn jitter_is_bounded_the_same_on_every_replica_and_spreads_ticks() {
        let mut s = every_5_min(Misfire::Skip);
        assert_eq!(s.jitter_for(t(1, 0, 0)), Duration::ZERO, "no jitter unless configured");
        s.jitter = Duration::from_secs(30);
        let delays: Vec<Duration> = (0..12).map(|i| s.jitter_for(t(1, i * 5, 0))).collect();
        assert!(delays.iter().all(|d| *d < Duration::from_secs(30)));
        assert_eq!(delays[3], s.clone().jitter_for(t(1, 15, 0)));
        let mut distinct = delays.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 6, "{delays:?}");
    }

    #[test]
    fn tick_keys_are_the_same_on_every_replica_and_differ_per_tick() {
        let s = every_5_min(Misfire::Skip);
        assert_eq!(s.tick_key(t(10, 5, 0)), s.tick_key(t(10, 5, 0)));
        assert_ne!(s.tick_key(t(10, 5, 0)), s.tick_key(t(10, 10, 0)));
    }

    #[test]
    fn the_default_file_parses_and_bad_entries_name_their_schedule() {
        assert!(
            load()
                .unwrap()
                .iter()
                .any(|s| s.name == "cashflow-nightly" && s.misfire == Misfire::RunOnce)
        );
        let bad = parse_schedules(
            "[[schedule]]\nname = \"x\"\ncron = \"nope\"\nkind = \"noop\"\nmisfire = \"skip\"\n",
            "f",
        )
        .unwrap_err();
        assert!(bad.to_string().contains("schedule `x`"), "{bad}");
        assert!(
            parse_schedules(
                "[[schedule]]\nname = \"y\"\ncron = \"0 * * * * *\"\nkind = \"nope\"\nmisfire = \"skip\"\n",
                "f"
            )
            .is_err()
        );
        assert!(
            parse_schedules(
                "[[schedule]]\nname = \"z\"\ncron = \"0 * * * * *\"\nkind = \"noop\"\nmisfire = \"sometimes\"\n",
                "f"
            )
            .is_err()
        );
    }

    fn zoned(expr: &str, zone: &str) -> Schedule {
        Schedule::new("dst", expr, zone.parse().unwrap(), "noop", json!({})).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// Ticks over a whole UTC day, and the same found one tick at a time with `next_tick`.
    fn day_of_ticks(s: &Schedule, day: &str) -> Vec<DateTime<Utc>> {
        let from = utc(&format!("{day}T00:00:00Z"));
        let until = from + chrono::Duration::days(1);
        let all = s.ticks_between(from, until);
        let mut stepped = Vec::new();
        let mut at = from;
        while let Some(next) = s.next_tick(at).filter(|t| *t <= until) {
            stepped.push(next);
            at = next;
        }
        assert_eq!(all, stepped, "ticks_between and next_tick agree");
        all
    }

    #[test]
    fn a_fixed_hour_in_a_repeated_local_hour_fires_once_at_its_first_pass() {
        // 2026-11-01, New York falls back at 02:00 EDT: 01:30 happens at 05:30 and 06:30 UTC.
        let s = zoned("0 30 1 * * *", "America/New_York");
        assert_eq!(day_of_ticks(&s, "2026-11-01"), vec![utc("2026-11-01T05:30:00Z")]);
        // 2026-10-25, Paris falls back at 03:00 CEST: 02:30 happens at 00:30 and 01:30 UTC.
        let s = zoned("0 30 2 * * *", "Europe/Paris");
        assert_eq!(day_of_ticks(&s, "2026-10-25"), vec![utc("2026-10-25T00:30:00Z")]);
    }

    #[test]
    fn a_fixed_hour_in_the_spring_forward_gap_moves_forward_by_the_gap_and_still_fires() {
        // 2026-03-08, New York jumps from 02:00 EST to 03:00 EDT: 02:30 is 03:30 EDT.
        let s = zoned("0 30 2 * * *", "America/New_York");
        assert_eq!(day_of_ticks(&s, "2026-03-08"), vec![utc("2026-03-08T07:30:00Z")]);
        // 2026-03-29, Paris jumps from 02:00 CET to 03:00 CEST: 02:30 is 03:30 CEST.
        let s = zoned("0 30 2 * * *", "Europe/Paris");
        assert_eq!(day_of_ticks(&s, "2026-03-29"), vec![utc("2026-03-29T01:30:00Z")]);
        // The days around keep their time.
        assert_eq!(day_of_ticks(&s, "2026-03-30"), vec![utc("2026-03-30T00:30:00Z")]);
    }

    #[test]
    fn a_sub_hourly_schedule_keeps_real_time_spacing_in_order_across_both_transitions() {
        let s = zoned("0 */30 * * * *", "America/New_York");
        for day in ["2026-11-01", "2026-03-08"] {
            let ticks = day_of_ticks(&s, day);
            assert!(
                ticks.windows(2).all(|w| w[1] - w[0] == chrono::Duration::minutes(30)),
                "{day}: {ticks:?}"
            );
            assert_eq!(ticks.len(), 48, "{day}: a tick every half hour of the UTC day");
        }
        // The repeated hour runs twice, as real time passes through it twice.
        let fall = s.ticks_between(utc("2026-11-01T04:45:00Z"), utc("2026-11-01T07:00:00Z"));
        assert_eq!(
            fall,
            ["05:00", "05:30", "06:00", "06:30", "07:00"].map(|hm| utc(&format!("2026-11-01T{hm}:00Z")))
        );
    }
}
