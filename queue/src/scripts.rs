use std::sync::LazyLock;

use redis::Script;

/// The Lua scripts, loaded once per process. Each runs atomically on one queue's slot; their
/// loops are bounded by the batch sizes passed in, never by the size of a set.
pub(crate) struct Scripts {
    pub push: Script,
    pub fetch: Script,
    pub ack: Script,
    pub renew: Script,
    pub reap: Script,
    pub release: Script,
    pub admin: Script,
    pub progress: Script,
}

/// `clock.lua` (Redis's time, for every time decision) before each script.
macro_rules! with_clock {
    ($file:literal) => {
        concat!(include_str!("lua/clock.lua"), include_str!($file))
    };
}

/// `ready.lua`'s functions (where a queued job waits, concurrency slots), defined once for
/// the scripts that move jobs, after `clock.lua`.
macro_rules! with_ready {
    ($file:literal) => {
        concat!(
            include_str!("lua/clock.lua"),
            include_str!("lua/ready.lua"),
            include_str!($file)
        )
    };
}

pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    push: Script::new(with_ready!("lua/push.lua")),
    fetch: Script::new(with_ready!("lua/fetch.lua")),
    ack: Script::new(with_ready!("lua/ack.lua")),
    renew: Script::new(with_clock!("lua/renew.lua")),
    reap: Script::new(with_ready!("lua/reap.lua")),
    release: Script::new(with_ready!("lua/release.lua")),
    admin: Script::new(with_ready!("lua/admin.lua")),
    progress: Script::new(with_clock!("lua/progress.lua")),
});
