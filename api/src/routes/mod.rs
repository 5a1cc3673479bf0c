mod body;
pub mod cashflow;
pub mod health;
pub mod jobs;
pub mod schedules;
