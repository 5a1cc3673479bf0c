//! Job ids are UUIDv7: ordered by creation time, so the primary key of `job_history` doubles
//! as a time index.
use chrono::{DateTime, Utc};

/// The smallest UUIDv7 of the millisecond `t`: job ids are UUIDv7, so every job created
/// before `t` has a smaller id, and the primary key finds them without another index.
pub fn first_uuid_v7_at(t: DateTime<Utc>) -> uuid::Uuid {
    let ms = t.timestamp_millis().max(0) as u64;
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x70;
    b[8] = 0x80;
    uuid::Uuid::from_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uuid_bound_orders_against_real_v7_ids() {
        let t: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
        let bound = first_uuid_v7_at(t);
        assert_eq!(bound.get_version_num(), 7);
        let at = |ms: i64| {
            let when = t + chrono::Duration::milliseconds(ms);
            uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                when.timestamp() as u64,
                when.timestamp_subsec_nanos(),
            ))
        };
        for _ in 0..100 {
            assert!(at(-1) < bound && bound <= at(0) && at(1) > bound);
        }
    }
}
