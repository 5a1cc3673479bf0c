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
}

pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    push: Script::new(include_str!("lua/push.lua")),
    fetch: Script::new(include_str!("lua/fetch.lua")),
    ack: Script::new(include_str!("lua/ack.lua")),
    renew: Script::new(include_str!("lua/renew.lua")),
    reap: Script::new(include_str!("lua/reap.lua")),
    release: Script::new(include_str!("lua/release.lua")),
    admin: Script::new(include_str!("lua/admin.lua")),
});
