//! The operator's measuring tools, kept out of the platform's libraries: `nightshift bench*`
//! (the README's figures, measured on this machine; never run by the test suite) and
//! `nightshift chaos` (faults against real processes, counting lost and duplicated work).
pub mod bench;
pub mod chaos;
pub mod doctor;
pub mod proxy;
