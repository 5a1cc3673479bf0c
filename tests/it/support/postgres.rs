//! PostgreSQL for a test alone: a fresh database on the shared server (`NIGHTSHIFT_TEST_PG_URL`),
//! or a server of its own to stop and restart.

use std::process::Command;

use nightshift_common::db;

use super::free_port;

/// The admin URL of the shared PostgreSQL server, where tests create and drop their databases.
pub fn pg_admin_url() -> String {
    std::env::var("NIGHTSHIFT_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct TestDb {
    pub url: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let admin = pg_admin_url();
        let name = format!("ns_test_{}", uuid::Uuid::new_v4().simple());
        let url = db::with_database(&admin, &name).unwrap();
        db::migrate(&url)
            .await
            .expect("PostgreSQL must be reachable at NIGHTSHIFT_TEST_PG_URL");
        TestDb { url }
    }

    /// A fresh database with no migration applied, for tests of the migrations themselves.
    pub async fn empty() -> Self {
        use sqlx::migrate::MigrateDatabase as _;
        let name = format!("ns_test_{}", uuid::Uuid::new_v4().simple());
        let url = db::with_database(&pg_admin_url(), &name).unwrap();
        sqlx::Postgres::create_database(&url)
            .await
            .expect("PostgreSQL must be reachable at NIGHTSHIFT_TEST_PG_URL");
        TestDb { url }
    }

    /// A database on another server (a `PrivatePostgres`), migrated.
    pub async fn at(url: String) -> Self {
        db::migrate(&url).await.expect("the private PostgreSQL answers");
        TestDb { url }
    }

    pub async fn pool(&self) -> sqlx::PgPool {
        db::connect(&self.url, 5).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let url = self.url.clone();
        // Drop runs outside async; a short-lived runtime on its own thread removes our database.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(db::drop_database(&url))
        })
        .join();
    }
}

/// A PostgreSQL server of the test's own (initdb on a free port, under a temp dir), for tests
/// that stop and restart it. As root it runs as the `postgres` user: PostgreSQL refuses root.
pub struct PrivatePostgres {
    pub port: u16,
    dir: std::path::PathBuf,
    bindir: std::path::PathBuf,
}

impl PrivatePostgres {
    pub fn start() -> Self {
        let bindir = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql (scripts/test.sh installs them)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max_by_key(|b| b.to_string_lossy().into_owned())
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = std::env::temp_dir().join(format!("ns-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let pg = PrivatePostgres {
            port: free_port(),
            dir,
            bindir,
        };
        if Self::as_root() {
            let ok = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&pg.dir)
                .status()
                .unwrap();
            assert!(ok.success(), "chown of the cluster's directory");
        }
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        pg.start_again();
        pg
    }

    fn as_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bindir.join(tool);
        let mut cmd = if Self::as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).current_dir("/").output().unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").to_string_lossy().into_owned();
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"],
        );
    }

    /// Stops at once, as a crash would: no checkpoint, every connection cut.
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
        }));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
