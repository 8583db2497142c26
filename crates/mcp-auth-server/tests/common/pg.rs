//! The test database for PostgreSQL tests: its URL, a schema per test, raw connections.
#![allow(dead_code, unreachable_pub)]
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mcp_auth_server::store::{PostgresOptions, PostgresStore};
use sqlx::{Connection, PgConnection};

pub(crate) const URL_ENV: &str = "MCP_AUTH_TEST_POSTGRES_URL";

/// The test database's URL once it answered; `None` when the tests skip (not under `CI`,
/// where they fail instead).
pub(crate) async fn url() -> Option<String> {
    let reason = match std::env::var(URL_ENV) {
        Ok(url) if !url.is_empty() => {
            match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&url)).await {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    return Some(url);
                }
                Ok(Err(e)) => format!("the PostgreSQL at {URL_ENV} is unreachable: {e}"),
                Err(_) => format!("the PostgreSQL at {URL_ENV} did not answer within 5 s"),
            }
        }
        _ => format!("{URL_ENV} is not set"),
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "PostgreSQL is required when CI is set: {reason}"
    );
    eprintln!("skipped: {reason} (set {URL_ENV}, e.g. postgres://postgres@127.0.0.1:5432/test)");
    None
}

/// A schema of this test's own (unique per process and test), dropped on drop.
pub(crate) struct Schema {
    pub(crate) url: String,
    pub(crate) name: String,
}

impl Schema {
    pub(crate) async fn new() -> Option<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let url = url().await?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("mcp_auth_test_{}_{n}", std::process::id());
        let schema = Self { url, name };
        schema.drop_now(); // left over by a crashed run with the same pid
        Some(schema)
    }

    pub(crate) fn options(&self) -> PostgresOptions {
        PostgresOptions::new(&self.url).schema(&self.name)
    }

    pub(crate) async fn connect(&self) -> PostgresStore {
        PostgresStore::connect_with(self.options()).await.unwrap()
    }

    /// A connection of the test's own, in the schema.
    pub(crate) async fn raw(&self) -> PgConnection {
        let mut conn = PgConnection::connect(&self.url).await.unwrap();
        sqlx::raw_sql(&format!("SET search_path TO \"{}\"", self.name))
            .execute(&mut conn)
            .await
            .unwrap();
        conn
    }

    fn drop_now(&self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop may run inside the test's runtime: a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&url).await {
                    let drop = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
                    let _ = sqlx::raw_sql(&drop).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        self.drop_now();
    }
}
