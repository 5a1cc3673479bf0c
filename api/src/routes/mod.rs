mod body;
pub mod cashflow;
pub mod emails;
pub mod health;
pub mod jobs;
pub mod keys;
pub mod reminders;
pub mod schedules;
