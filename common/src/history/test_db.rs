//! A throwaway PostgreSQL database for the history and group-commit tests.
use sqlx::PgPool;
use uuid::Uuid;

/// A fresh, migrated database, dropped when the test ends, failed or not.
pub(crate) struct TestDb {
    url: String,
}

impl TestDb {
    pub(crate) async fn create() -> Self {
        let admin = std::env::var("NIGHTSHIFT_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("nightshift_histtest_{}", Uuid::new_v4().simple());
        // The guard exists before the database does: a failed migration still drops it.
        let db = TestDb {
            url: crate::db::with_database(&admin, &name).unwrap(),
        };
        crate::db::migrate(&db.url)
            .await
            .expect("PostgreSQL must be reachable at NIGHTSHIFT_TEST_PG_URL");
        db
    }

    pub(crate) async fn pool(&self) -> PgPool {
        crate::db::connect(&self.url, 2).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let url = self.url.clone();
        // Drop cannot await, and the test's runtime is the one being left: a runtime of its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(crate::db::drop_database(&url))
        })
        .join();
    }
}
