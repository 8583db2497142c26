//! Versioned schemas for the SQL backends: the migrations embedded in the binary
//! (`migrations/sqlite/*.sql`, `migrations/postgres/*.sql`), applied at start and recorded in
//! sqlx's `_sqlx_migrations` table, and the refusal to run on a schema newer than the binary.
//!
//! PostgreSQL migrates through sqlx's migrator. SQLite (driven by rusqlite) has its own small
//! runner, [`run_sqlite`], which keeps sqlx's table and checksums (SHA-384 of the script), so
//! that a database migrated by either opens with the other.

use std::borrow::Cow;

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

/// A migration script as checksummed: checksums must not depend on how git checked the file
/// out.
fn normalized(sql: &'static str) -> Cow<'static, str> {
    if sql.contains('\r') {
        Cow::Owned(sql.replace("\r\n", "\n"))
    } else {
        Cow::Borrowed(sql)
    }
}

/// A set of embedded migrations as sqlx's [`MigrationSource`].
#[cfg(feature = "postgres")]
#[derive(Debug)]
struct Source(&'static [Embedded]);

#[cfg(feature = "postgres")]
impl sqlx::migrate::MigrationSource<'static> for Source {
    fn resolve(
        self,
    ) -> std::pin::Pin<
        Box<
            dyn Future<Output = Result<Vec<sqlx::migrate::Migration>, sqlx::error::BoxDynError>>
                + Send
                + 'static,
        >,
    > {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                sqlx::migrate::Migration::new(
                    version,
                    Cow::Borrowed(description),
                    sqlx::migrate::MigrationType::Simple,
                    normalized(sql),
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
#[cfg(feature = "postgres")]
pub(super) async fn run<C>(
    conn: &mut C,
    embedded: &'static [Embedded],
    backend: &'static str,
) -> Result<(), StoreError>
where
    C: sqlx::migrate::Migrate + Send,
{
    let mut migrator = sqlx::migrate::Migrator::new(Source(embedded))
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

/// sqlx's version table, as sqlx's SQLite driver creates it.
#[cfg(feature = "sqlite")]
const SQLITE_TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations ( \
    version BIGINT PRIMARY KEY, \
    description TEXT NOT NULL, \
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, \
    success BOOLEAN NOT NULL, \
    checksum BLOB NOT NULL, \
    execution_time BIGINT NOT NULL)";

/// Bring the SQLite database behind `conn` to the newest schema in [`SQLITE`], in one
/// `BEGIN IMMEDIATE` transaction (SQLite's write lock is the migration lock: processes opening
/// one file at once migrate one after the other, and a failed script leaves nothing behind).
/// Refuses, changing nothing, a database with a migration newer than any this binary knows, one
/// whose earlier migration failed (sqlx's "dirty"), and one where an applied migration's
/// checksum differs from the embedded script's.
#[cfg(feature = "sqlite")]
pub(super) fn run_sqlite(conn: &mut rusqlite::Connection) -> Result<(), StoreError> {
    use sha2::{Digest, Sha384};

    let failed = |e| StoreError::with_source("cannot migrate the SQLite database", e);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(failed)?;
    tx.execute_batch(SQLITE_TABLE).map_err(failed)?;
    let applied = {
        let mut statement = tx
            .prepare("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")
            .map_err(failed)?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, Vec<u8>>(1)?,
                    row.get::<_, bool>(2)?,
                ))
            })
            .map_err(failed)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(failed)?
    };
    let known = latest(SQLITE);
    if let Some(newest) = applied.iter().map(|m| m.0).max()
        && newest > known
    {
        return Err(StoreError::new(newer_schema(newest, known)));
    }
    if let Some((version, _, _)) = applied.iter().find(|m| !m.2) {
        return Err(StoreError::new(format!(
            "migration {version} of the SQLite database failed earlier (the database is dirty): \
             repair or restore it"
        )));
    }
    for &(version, description, sql) in SQLITE {
        let sql = normalized(sql);
        let checksum = Sha384::digest(sql.as_bytes());
        match applied.iter().find(|m| m.0 == version) {
            Some((_, stored, _)) if stored.as_slice() == checksum.as_slice() => {}
            Some(_) => {
                return Err(StoreError::new(format!(
                    "migration {version} of the SQLite database differs from the one this \
                     mcp-auth-server embeds"
                )));
            }
            None => {
                let started = std::time::Instant::now();
                tx.execute_batch(&sql).map_err(failed)?;
                let elapsed = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
                tx.execute(
                    "INSERT INTO _sqlx_migrations \
                     (version, description, success, checksum, execution_time) \
                     VALUES (?1, ?2, TRUE, ?3, ?4)",
                    rusqlite::params![version, description, checksum.as_slice(), elapsed],
                )
                .map_err(failed)?;
            }
        }
    }
    tx.commit().map_err(failed)
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
