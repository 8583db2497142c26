//! Versioned schemas for the SQL backends: the migrations embedded in the binary
//! (`migrations/sqlite/*.sql`, `migrations/postgres/*.sql`), applied at start and recorded in
//! sqlx's `_sqlx_migrations` table, and the refusal to run on a schema newer than the binary.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migrate, Migration, MigrationSource, MigrationType, Migrator};

use super::StoreError;

/// One embedded migration: version, description, SQL.
type Embedded = (i64, &'static str, &'static str);

/// The SQLite schema, oldest first. Never edit one that shipped: add the next.
#[cfg(feature = "sqlite")]
pub(super) const SQLITE: &[Embedded] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "client policy",
        include_str!("../../migrations/sqlite/0002_client_policy.sql"),
    ),
    (
        3,
        "upstream tokens",
        include_str!("../../migrations/sqlite/0003_upstream_tokens.sql"),
    ),
    (
        4,
        "refresh grace",
        include_str!("../../migrations/sqlite/0004_refresh_grace.sql"),
    ),
    (
        5,
        "public client registration key",
        include_str!("../../migrations/sqlite/0005_public_client_key.sql"),
    ),
    (
        6,
        "client last authorized",
        include_str!("../../migrations/sqlite/0006_client_last_authorized.sql"),
    ),
    (
        7,
        "shared state",
        include_str!("../../migrations/sqlite/0007_shared_state.sql"),
    ),
    (
        8,
        "refresh token dpop binding",
        include_str!("../../migrations/sqlite/0008_refresh_dpop_jkt.sql"),
    ),
];

/// The PostgreSQL schema, oldest first (version 1 is everything SQLite's 1–7 are). Never edit
/// one that shipped: add the next.
#[cfg(feature = "postgres")]
pub(super) const POSTGRES: &[Embedded] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "refresh token dpop binding",
        include_str!("../../migrations/postgres/0002_refresh_dpop_jkt.sql"),
    ),
];

/// A set of embedded migrations as sqlx's [`MigrationSource`].
#[derive(Debug)]
struct Source(&'static [Embedded]);

impl MigrationSource<'static> for Source {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                // Checksums must not depend on how git checked the file out.
                let sql = if sql.contains('\r') {
                    Cow::Owned(sql.replace("\r\n", "\n"))
                } else {
                    Cow::Borrowed(sql)
                };
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql,
                    false,
                )
            })
            .collect();
        Box::pin(std::future::ready(Ok(migrations)))
    }
}

/// The newest version in `embedded`.
fn latest(embedded: &[Embedded]) -> i64 {
    embedded.iter().map(|m| m.0).max().unwrap_or(0)
}

/// The message for a database whose schema is newer than this binary.
pub(super) fn newer_schema(applied: i64, known: i64) -> String {
    format!(
        "the database schema is at version {applied}, newer than this mcp-auth-server \
         (which knows up to {known}): upgrade the server"
    )
}

/// Bring the database behind `conn` to the newest schema in `embedded`, under the backend's
/// migration lock (PostgreSQL: an advisory lock, so replicas starting at once migrate one after
/// the other; SQLite: its write lock). Refuses, changing nothing, when the database has a
/// migration newer than any this binary knows: an older server must not write to a schema it
/// does not understand.
pub(super) async fn run<C>(
    conn: &mut C,
    embedded: &'static [Embedded],
    backend: &'static str,
) -> Result<(), StoreError>
where
    C: Migrate + Send,
{
    let mut migrator = Migrator::new(Source(embedded))
        .await
        .map_err(|e| StoreError::with_source("cannot load the embedded migrations", e))?;
    let failed = |e| StoreError::with_source(format!("cannot migrate the {backend} database"), e);
    conn.lock().await.map_err(failed)?;
    let checked = async {
        conn.ensure_migrations_table().await.map_err(failed)?;
        let applied = conn.list_applied_migrations().await.map_err(failed)?;
        let known = latest(embedded);
        if let Some(newest) = applied.iter().map(|m| m.version).max()
            && newest > known
        {
            return Err(StoreError::new(newer_schema(newest, known)));
        }
        // The lock is held already.
        migrator.set_locking(false);
        migrator.run_direct(&mut *conn).await.map_err(failed)
    }
    .await;
    let unlocked = conn.unlock().await.map_err(failed);
    checked.and(unlocked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newer_schema_message_names_both_versions_and_what_to_do() {
        assert_eq!(
            newer_schema(9, 7),
            "the database schema is at version 9, newer than this mcp-auth-server \
             (which knows up to 7): upgrade the server"
        );
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_versions_are_one_to_eight_in_order() {
        let versions: Vec<i64> = SQLITE.iter().map(|m| m.0).collect();
        assert_eq!(versions, (1..=8).collect::<Vec<_>>());
        assert_eq!(latest(SQLITE), 8);
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_versions_are_in_order() {
        let versions: Vec<i64> = POSTGRES.iter().map(|m| m.0).collect();
        assert_eq!(versions, (1..=2).collect::<Vec<_>>());
    }
}
