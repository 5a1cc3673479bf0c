//! The repeat rules that reminders and recurring finance items share, by name. The API checks a
//! request against these names, the workers read the stored ones back into their engine, and the
//! tables' CHECK constraints and the OpenAPI patterns list the same: tests pin each copy to this
//! one (the engine's in `workers/src/jobs/cashflow/engine.rs`, the others in
//! `tests/it/architecture.rs`).
pub const NAMES: &[&str] = &[
    "weekly",
    "biweekly",
    "every_n_weeks",
    "semi_monthly",
    "monthly",
    "monthly_last_day",
    "yearly",
];
