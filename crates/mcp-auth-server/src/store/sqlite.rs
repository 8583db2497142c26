//! [`SqliteStore`]: the embedded, persistent backend (sqlx on SQLite, migrations embedded).

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::SqliteConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use super::group_commit::GroupCommit;
use super::memory::{foreign_refresh, merge_scopes};
use super::sql::{
    Columns, client_columns, client_from_row, code_columns, code_from_row, consent_from_row,
    db_error, flow_from_row, from_db, grant_columns, grant_from_row, impl_columns, key_from_row,
    refresh_columns, refresh_from_row, serialize_client, state_from_name, to_db, upstream_columns,
    upstream_from_row, window_from,
};
use super::{
    ClientAuthMethod, ClientRecord, ClientSource, CodeRecord, CodeTake, ConsentRecord, FlowKind,
    FlowRecord, GrantRecord, LeaseTake, RefreshLease, RefreshRecord, RefreshState, Revoked,
    Rotation, Store, StoreError, StoreFuture, StoredKey, TokenHash, UpstreamTokenRecord, Window,
    migrate,
};

/// Connections per pool: SQLite has one writer at a time, a few readers are plenty.
const MAX_CONNECTIONS: u32 = 4;
/// Connections for the short-lived writes (see `SqliteStore::light`).
const LIGHT_CONNECTIONS: u32 = 2;
/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A SQLite store: the persistent default. Everything survives a restart.
///
/// - The schema is embedded in the binary and migrated on open (`migrations/*.sql`, tracked in
///   sqlx's `_sqlx_migrations` table); opening an up-to-date database again is a no-op.
/// - Files are opened in WAL mode with a 5 s busy timeout and foreign keys on, through a pool
///   of 4 connections, so that several processes or tasks can share one file.
/// - [`take_code`](Store::take_code) is one conditional `UPDATE … RETURNING`;
///   [`rotate_refresh`](Store::rotate_refresh), [`revoke_grant`](Store::revoke_grant),
///   [`put_consent`](Store::put_consent) and [`purge_expired`](Store::purge_expired) each run in
///   one `BEGIN IMMEDIATE` transaction.
/// - Hashes are stored as 32-byte BLOBs, client metadata as JSON text, times as INTEGER
///   (times beyond `i64::MAX` are stored as `i64::MAX`).
///
/// `Debug` shows the database location only.
///
/// # Example
///
/// ```
/// use mcp_auth_core::metadata::ClientMetadata;
/// use mcp_auth_server::store::{ClientRecord, SqliteStore, Store};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let path = std::env::temp_dir().join(format!("mcp-auth-doctest-{}.db", std::process::id()));
/// # let _ = std::fs::remove_file(&path);
/// let store = SqliteStore::open(&path).await?;
/// let mut metadata = ClientMetadata::default();
/// metadata.redirect_uris = vec!["http://127.0.0.1/callback".into()];
/// store.put_client(ClientRecord::public("client-1", metadata, 1_700_000_000)).await?;
/// store.close().await;
///
/// // A restart: the same file, a new store, the same client.
/// let store = SqliteStore::open(&path).await?;
/// let client = store.get_client("client-1").await?.expect("persisted");
/// assert_eq!(client.metadata.redirect_uris, ["http://127.0.0.1/callback"]);
/// store.close().await;
/// # for suffix in ["", "-wal", "-shm"] {
/// #     let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
/// # }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    /// Durable writes (grants, refresh rotation, revocation, clients, consents, keys, upstream
    /// tokens) and reads: commits at the chosen [`Durability`].
    pool: SqlitePool,
    /// Short-lived writes (codes, browser flows, rate-limit windows, leases): commits without
    /// their own `fsync` (`synchronous=NORMAL`). The next durable commit makes them durable
    /// too (the WAL is written in order), so they are lost only with the power or the OS, and
    /// then only what a retry recovers: a code or a sign-in in progress, a counter.
    light: SqlitePool,
    /// The hot durable writes (a grant, a rotation), committed in groups on `pool`.
    durable: GroupCommit,
    location: Arc<str>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location)
            .field("connections", &self.pool.size())
            .finish()
    }
}

/// How hard SQLite works to keep a commit across a power loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous=FULL` (the default): every durable commit (a grant and its refresh
    /// token, a rotation, a revocation, a client, a consent, a key, upstream tokens) is on disk
    /// before the call returns, and with it every short-lived write before it (codes, browser
    /// flows, rate-limit windows, leases, which commit without an `fsync` of their own). Costs
    /// one `fsync` per durable commit, which is most of a grant's CPU and time on ordinary
    /// disks: one per authorization-code grant, one per refresh.
    #[default]
    Full,
    /// `synchronous=NORMAL` in WAL mode: commits survive a crash of the process, but the last
    /// ones may be lost on power failure (the database is never corrupted). A lost rotation
    /// means a refresh token that was already exchanged is accepted once more.
    Normal,
}

impl SqliteStore {
    /// Open (creating it if missing) the database file at `path` and migrate it, with
    /// [`Durability::Full`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full).await
    }

    /// [`open`](Self::open) with a chosen [`Durability`].
    pub async fn open_with(
        path: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let synchronous = match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        };
        let options = SqliteConnectOptions::new()
            .filename(path.as_ref())
            .create_if_missing(true)
            .synchronous(synchronous);
        Self::with_options(options, false).await
    }

    /// Connect with a sqlx SQLite URL (`sqlite://path/to/file.db?mode=rwc`, `sqlite::memory:`)
    /// and migrate. The URL decides whether a missing file is created (`mode=rwc`); WAL, the
    /// busy timeout and foreign keys are set as by [`open`](Self::open). An in-memory database
    /// lives as long as the returned store (and its clones).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::with_source("invalid SQLite URL", e))?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        Self::with_options(options, in_memory).await
    }

    /// Use an existing pool and migrate it (kept private so sqlx stays out of the public API).
    async fn from_pool(pool: SqlitePool, light: SqlitePool) -> Result<Self, StoreError> {
        let location = pool.connect_options().get_filename().display().to_string();
        migrate(&pool).await?;
        Ok(Self {
            durable: GroupCommit::new(pool.clone()),
            pool,
            light,
            location: location.into(),
        })
    }

    /// Close every connection, waiting for those in use to be returned (graceful shutdown).
    /// Later calls on this store or its clones fail.
    pub async fn close(&self) {
        self.light.close().await;
        self.pool.close().await;
    }

    async fn with_options(
        options: SqliteConnectOptions,
        in_memory: bool,
    ) -> Result<Self, StoreError> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let mut pool = SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS);
        if in_memory {
            // The database goes away with its last connection: keep one open for good.
            pool = pool
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let pool = pool
            .connect_with(options.clone())
            .await
            .map_err(|e| StoreError::with_source("cannot open the SQLite database", e))?;
        let light = if in_memory {
            // One in-memory database: a second pool would open another one.
            pool.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(LIGHT_CONNECTIONS)
                .connect_lazy_with(options.synchronous(SqliteSynchronous::Normal))
        };
        Self::from_pool(pool, light).await
    }
}

async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(db_error("cannot open the SQLite database"))?;
    migrate::run(&mut *conn, migrate::SQLITE, "SQLite").await
}

impl_columns!(SqliteRow);

async fn begin_immediate(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, StoreError> {
    pool.begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(db_error("cannot start a transaction"))
}

async fn commit(tx: Transaction<'static, Sqlite>) -> Result<(), StoreError> {
    tx.commit()
        .await
        .map_err(db_error("cannot commit a transaction"))
}

async fn insert_refresh(
    conn: &mut SqliteConnection,
    refresh: &RefreshRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens \
         (hash, grant_id, scope, issued_at, expires_at, state, parent, rotated_at, dpop_jkt) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .bind(refresh.hash.as_bytes().as_slice())
    .bind(refresh.grant_id.as_str())
    .bind(refresh.scope.as_str())
    .bind(to_db(refresh.issued_at))
    .bind(to_db(refresh.expires_at))
    .bind(refresh.state.as_str())
    .bind(refresh.parent.as_ref().map(|p| p.as_bytes().as_slice()))
    .bind(refresh.rotated_at.map(to_db))
    .bind(refresh.dpop_jkt.as_deref())
    .execute(&mut *conn)
    .await
    .map_err(db_error("cannot store a refresh token"))?;
    Ok(())
}

/// Revoke a grant and its family inside `tx`; whether the grant was active at `now` before.
async fn revoke_family(
    conn: &mut SqliteConnection,
    grant_id: &str,
    now: u64,
) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT expires_at, revoked_at FROM grants WHERE grant_id = ?1")
        .bind(grant_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error("cannot read a grant"))?;
    let Some(row) = row else {
        return Ok(false);
    };
    let was_active = row.opt_time("revoked_at")?.is_none() && now < row.time("expires_at")?;
    sqlx::query("UPDATE grants SET revoked_at = COALESCE(revoked_at, ?2) WHERE grant_id = ?1")
        .bind(grant_id)
        .bind(to_db(now))
        .execute(&mut *conn)
        .await
        .map_err(db_error("cannot revoke a grant"))?;
    sqlx::query("UPDATE refresh_tokens SET state = 'revoked' WHERE grant_id = ?1")
        .bind(grant_id)
        .execute(&mut *conn)
        .await
        .map_err(db_error("cannot revoke refresh tokens"))?;
    Ok(was_active)
}

/// [`Store::rotate_refresh`] inside the caller's transaction.
async fn rotate(
    conn: &mut SqliteConnection,
    old: TokenHash,
    mut new: RefreshRecord,
    now: u64,
    grace: u64,
) -> Result<Rotation, StoreError> {
    let old = &old;
    {
        let tx = conn;
        let row = sqlx::query(
            "SELECT r.grant_id, r.state, r.parent, r.rotated_at, g.grant_id AS live_grant, \
             g.revoked_at, g.expires_at \
             FROM refresh_tokens r LEFT JOIN grants g ON g.grant_id = r.grant_id \
             WHERE r.hash = ?1",
        )
        .bind(old.as_bytes().as_slice())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error("cannot read a refresh token"))?;
        let Some(row) = row else {
            return Ok(Rotation::Unknown);
        };
        let grant_id = row.text("grant_id")?;
        let state = state_from_name(&row.text("state")?)?;
        let live_grant = row.opt_text("live_grant")?;
        let grant_revoked = live_grant.is_none() || row.opt_time("revoked_at")?.is_some();
        if state == RefreshState::Revoked || grant_revoked {
            return Ok(Rotation::Revoked);
        }
        if new.grant_id != grant_id {
            return Err(foreign_refresh());
        }
        new.parent = Some(*old);
        new.rotated_at = None;
        let old_bytes = old.as_bytes().as_slice();
        let outcome = if state == RefreshState::Rotated {
            let grant_active = now < row.opt_time("expires_at")?.unwrap_or(0);
            let in_window = row
                .opt_time("rotated_at")?
                .is_some_and(|at| grace > 0 && now.saturating_sub(at) <= grace);
            // (successors, of which used): the grace window needs some and none used.
            let counts = sqlx::query(
                "SELECT COUNT(*) AS total, COALESCE(SUM(state <> 'active'), 0) AS used \
                 FROM refresh_tokens WHERE parent = ?1",
            )
            .bind(old_bytes)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error("cannot read refresh successors"))?;
            let total = counts.int("total")?;
            let used = counts.int("used")?;
            if in_window && grant_active && total > 0 && used == 0 {
                insert_refresh(tx, &new).await?;
                Rotation::WithinGrace
            } else {
                revoke_family(tx, &grant_id, now).await?;
                Rotation::Reused { grant_id }
            }
        } else {
            // The first use of a successor supersedes its unused siblings: one live branch.
            sqlx::query(
                "UPDATE refresh_tokens SET state = 'rotated' \
                 WHERE parent = (SELECT parent FROM refresh_tokens WHERE hash = ?1) \
                 AND hash <> ?1 AND state = 'active'",
            )
            .bind(old_bytes)
            .execute(&mut *tx)
            .await
            .map_err(db_error("cannot rotate a refresh token"))?;
            sqlx::query(
                "UPDATE refresh_tokens SET state = 'rotated', rotated_at = ?2 WHERE hash = ?1",
            )
            .bind(old_bytes)
            .bind(to_db(now))
            .execute(&mut *tx)
            .await
            .map_err(db_error("cannot rotate a refresh token"))?;
            insert_refresh(tx, &new).await?;
            Rotation::Rotated
        };
        Ok(outcome)
    }
}

/// [`Store::create_grant`] inside the caller's transaction.
async fn insert_grant(
    conn: &mut SqliteConnection,
    grant: GrantRecord,
    refresh: Option<RefreshRecord>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO grants \
         (grant_id, client_id, subject, scope, resource, created_at, expires_at, revoked_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind(grant.grant_id.as_str())
    .bind(grant.client_id.as_str())
    .bind(grant.subject.as_str())
    .bind(grant.scope.as_str())
    .bind(grant.resource.as_str())
    .bind(to_db(grant.created_at))
    .bind(to_db(grant.expires_at))
    .bind(grant.revoked_at.map(to_db))
    .execute(&mut *conn)
    .await
    .map_err(db_error("cannot store a grant"))?;
    if let Some(refresh) = &refresh {
        insert_refresh(conn, refresh).await?;
    }
    Ok(())
}

impl SqliteStore {
    async fn purge(&self, now: u64) -> Result<u64, StoreError> {
        let now = to_db(now);
        let mut tx = begin_immediate(&self.pool).await?;
        let mut removed = 0;
        for statement in [
            "DELETE FROM codes WHERE expires_at <= ?1",
            "DELETE FROM refresh_tokens WHERE expires_at <= ?1 \
             OR grant_id IN (SELECT grant_id FROM grants WHERE expires_at <= ?1)",
            "DELETE FROM grants WHERE expires_at <= ?1",
            "DELETE FROM revoked_access_tokens WHERE expires_at <= ?1",
            "DELETE FROM flows WHERE expires_at <= ?1",
            "DELETE FROM rate_windows WHERE ends_at <= ?1",
            "DELETE FROM leases WHERE until <= ?1",
        ] {
            removed += sqlx::query(statement)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error("cannot purge expired records"))?
                .rows_affected();
        }
        commit(tx).await?;
        Ok(removed)
    }
}

impl Store for SqliteStore {
    fn put_client(&self, client: ClientRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let (metadata, resources) = serialize_client(&client)?;
            sqlx::query(
                "INSERT OR REPLACE INTO clients \
                 (client_id, secret_hash, secret_expires_at, auth_method, metadata, issued_at, source, \
                  machine_scope, resources, last_authorized_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .bind(client.client_id.as_str())
            .bind(client.secret_hash.as_ref().map(|h| h.as_bytes().as_slice()))
            .bind(to_db(client.secret_expires_at))
            .bind(client.auth_method.as_str())
            .bind(metadata)
            .bind(to_db(client.issued_at))
            .bind(client.source.as_str())
            .bind(client.machine_scope.as_deref())
            .bind(resources)
            .bind(client.last_authorized_at.map(to_db))
            .execute(&self.pool)
            .await
            .map_err(db_error("cannot store a client"))?;
            Ok(())
        })
    }

    fn client_authorized<'a>(&'a self, client_id: &'a str, now: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("UPDATE clients SET last_authorized_at = ?2 WHERE client_id = ?1")
                .bind(client_id)
                .bind(to_db(now))
                .execute(&self.light)
                .await
                .map_err(db_error("cannot record a client's authorization"))?;
            Ok(())
        })
    }

    fn purge_unused_public_clients(&self, unused_since: u64, now: u64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let done = sqlx::query(
                "DELETE FROM clients WHERE source = ?1 AND auth_method = ?2 \
                 AND COALESCE(last_authorized_at, issued_at) <= ?3 \
                 AND NOT EXISTS (SELECT 1 FROM grants WHERE grants.client_id = clients.client_id \
                     AND grants.expires_at > ?4 AND grants.revoked_at IS NULL)",
            )
            .bind(ClientSource::Dynamic.as_str())
            .bind(ClientAuthMethod::None.as_str())
            .bind(to_db(unused_since))
            .bind(to_db(now))
            .execute(&self.pool)
            .await
            .map_err(db_error("cannot purge unused clients"))?;
            Ok(done.rows_affected())
        })
    }

    fn find_public_client<'a>(
        &'a self,
        registration_key: &'a TokenHash,
    ) -> StoreFuture<'a, Option<ClientRecord>> {
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                client_columns!(),
                " FROM clients WHERE registration_key = ?1"
            ))
            .bind(registration_key.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("cannot read a client"))?;
            row.as_ref().map(client_from_row).transpose()
        })
    }

    fn put_public_client(
        &self,
        client: ClientRecord,
        registration_key: TokenHash,
    ) -> StoreFuture<'_, (ClientRecord, bool)> {
        Box::pin(async move {
            let (metadata, resources) = serialize_client(&client)?;
            // The unique index on registration_key decides: one statement, so of concurrent
            // identical registrations exactly one inserts; the others read the winner.
            let inserted = sqlx::query(
                "INSERT INTO clients \
                 (client_id, secret_hash, secret_expires_at, auth_method, metadata, issued_at, source, \
                  machine_scope, resources, registration_key, last_authorized_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                 ON CONFLICT (registration_key) WHERE registration_key IS NOT NULL DO NOTHING",
            )
            .bind(client.client_id.as_str())
            .bind(client.secret_hash.as_ref().map(|h| h.as_bytes().as_slice()))
            .bind(to_db(client.secret_expires_at))
            .bind(client.auth_method.as_str())
            .bind(metadata)
            .bind(to_db(client.issued_at))
            .bind(client.source.as_str())
            .bind(client.machine_scope.as_deref())
            .bind(resources)
            .bind(registration_key.as_bytes().as_slice())
            .bind(client.last_authorized_at.map(to_db))
            .execute(&self.pool)
            .await
            .map_err(db_error("cannot store a client"))?
            .rows_affected();
            if inserted > 0 {
                return Ok((client, true));
            }
            match self.find_public_client(&registration_key).await? {
                Some(existing) => Ok((existing, false)),
                None => Err(StoreError::new(
                    "the client registered with the same metadata was deleted meanwhile",
                )),
            }
        })
    }

    fn get_client<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<ClientRecord>> {
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                client_columns!(),
                " FROM clients WHERE client_id = ?1"
            ))
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("cannot read a client"))?;
            row.as_ref().map(client_from_row).transpose()
        })
    }

    fn delete_client<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM clients WHERE client_id = ?1")
                .bind(client_id)
                .execute(&self.pool)
                .await
                .map_err(db_error("cannot delete a client"))?;
            Ok(done.rows_affected() > 0)
        })
    }

    fn put_code(&self, code: CodeRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            // A plain INSERT: replacing a consumed code would make it fresh again.
            sqlx::query(concat!(
                "INSERT INTO codes (",
                code_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ))
            .bind(code.hash.as_bytes().as_slice())
            .bind(code.client_id.as_str())
            .bind(code.redirect_uri.as_str())
            .bind(code.redirect_uri_in_request)
            .bind(code.code_challenge.as_str())
            .bind(code.resource.as_str())
            .bind(code.scope.as_str())
            .bind(code.subject.as_str())
            .bind(code.grant_id.as_str())
            .bind(to_db(code.issued_at))
            .bind(to_db(code.expires_at))
            .execute(&self.light)
            .await
            .map_err(db_error("cannot store an authorization code"))?;
            Ok(())
        })
    }

    fn take_code<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, CodeTake> {
        Box::pin(async move {
            // One statement: SQLite runs it under the write lock, so exactly one caller flips
            // `used` and gets the row back. (`fetch_all` runs it to completion.)
            let taken = sqlx::query(concat!(
                "UPDATE codes SET used = 1 WHERE hash = ?1 AND used = 0 RETURNING ",
                code_columns!()
            ))
            .bind(hash.as_bytes().as_slice())
            .fetch_all(&self.light)
            .await
            .map_err(db_error("cannot consume an authorization code"))?;
            if let Some(row) = taken.first() {
                return Ok(CodeTake::Fresh(code_from_row(row)?));
            }
            let row = sqlx::query(concat!(
                "SELECT ",
                code_columns!(),
                " FROM codes WHERE hash = ?1"
            ))
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.light)
            .await
            .map_err(db_error("cannot read an authorization code"))?;
            Ok(match row {
                Some(row) => CodeTake::Replayed(code_from_row(&row)?),
                None => CodeTake::Unknown,
            })
        })
    }

    fn create_grant(
        &self,
        grant: GrantRecord,
        refresh: Option<RefreshRecord>,
    ) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if refresh
                .as_ref()
                .is_some_and(|r| r.grant_id != grant.grant_id)
            {
                return Err(foreign_refresh());
            }
            self.durable
                .run(move |conn| Box::pin(insert_grant(conn, grant, refresh)))
                .await
        })
    }
    fn get_grant<'a>(&'a self, grant_id: &'a str) -> StoreFuture<'a, Option<GrantRecord>> {
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                grant_columns!(),
                " FROM grants g WHERE g.grant_id = ?1"
            ))
            .bind(grant_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("cannot read a grant"))?;
            row.as_ref().map(grant_from_row).transpose()
        })
    }

    fn get_refresh<'a>(
        &'a self,
        hash: &'a TokenHash,
    ) -> StoreFuture<'a, Option<(RefreshRecord, GrantRecord)>> {
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                refresh_columns!(),
                ", ",
                grant_columns!(),
                " FROM refresh_tokens r JOIN grants g ON g.grant_id = r.grant_id WHERE r.hash = ?1"
            ))
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("cannot read a refresh token"))?;
            row.map(|row| Ok((refresh_from_row(&row)?, grant_from_row(&row)?)))
                .transpose()
        })
    }

    fn rotate_refresh<'a>(
        &'a self,
        old: &'a TokenHash,
        new: RefreshRecord,
        now: u64,
        grace: u64,
    ) -> StoreFuture<'a, Rotation> {
        let old = *old;
        Box::pin(
            self.durable
                .run(move |conn| Box::pin(rotate(conn, old, new, now, grace))),
        )
    }

    fn revoke_grant<'a>(&'a self, grant_id: &'a str, now: u64) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut tx = begin_immediate(&self.pool).await?;
            let was_active = revoke_family(&mut tx, grant_id, now).await?;
            commit(tx).await?;
            Ok(was_active)
        })
    }

    fn revoke_access_token<'a>(
        &'a self,
        jti: &'a str,
        expires_at: u64,
        now: u64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO revoked_access_tokens (jti, expires_at, revoked_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (jti) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
            )
            .bind(jti)
            .bind(to_db(expires_at))
            .bind(to_db(now))
            .execute(&self.pool)
            .await
            .map_err(db_error("cannot revoke an access token"))?;
            Ok(())
        })
    }

    fn is_access_token_revoked<'a>(&'a self, jti: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let row = sqlx::query("SELECT 1 FROM revoked_access_tokens WHERE jti = ?1")
                .bind(jti)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error("cannot read the access-token deny list"))?;
            Ok(row.is_some())
        })
    }

    fn list_revocations(&self, now: u64, since: u64) -> StoreFuture<'_, Vec<Revoked>> {
        Box::pin(async move {
            let tokens: Vec<(String, i64)> = sqlx::query_as(
                "SELECT jti, expires_at FROM revoked_access_tokens \
                 WHERE expires_at > ?1 AND revoked_at >= ?2",
            )
            .bind(to_db(now))
            .bind(to_db(since))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error("cannot read the access-token deny list"))?;
            let grants: Vec<(String, i64)> = sqlx::query_as(
                "SELECT grant_id, revoked_at FROM grants \
                 WHERE revoked_at IS NOT NULL AND revoked_at >= ?1",
            )
            .bind(to_db(since))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error("cannot read the revoked grants"))?;
            let time = from_db;
            Ok(tokens
                .into_iter()
                .map(|(jti, expires_at)| Revoked::AccessToken {
                    jti,
                    expires_at: time(expires_at),
                })
                .chain(
                    grants
                        .into_iter()
                        .map(|(grant_id, revoked_at)| Revoked::Grant {
                            grant_id,
                            revoked_at: time(revoked_at),
                        }),
                )
                .collect())
        })
    }

    fn put_consent(&self, consent: ConsentRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut tx = begin_immediate(&self.pool).await?;
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT scope FROM consents WHERE subject = ?1 AND client_id = ?2 AND resource = ?3",
            )
            .bind(consent.subject.as_str())
            .bind(consent.client_id.as_str())
            .bind(consent.resource.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error("cannot read a consent"))?;
            let scope = merge_scopes(existing.as_deref().unwrap_or(""), &consent.scope);
            sqlx::query(
                "INSERT INTO consents (subject, client_id, resource, scope, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (subject, client_id, resource) \
                 DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at",
            )
            .bind(consent.subject.as_str())
            .bind(consent.client_id.as_str())
            .bind(consent.resource.as_str())
            .bind(scope)
            .bind(to_db(consent.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(db_error("cannot store a consent"))?;
            commit(tx).await
        })
    }

    fn get_consent<'a>(
        &'a self,
        subject: &'a str,
        client_id: &'a str,
        resource: &'a str,
    ) -> StoreFuture<'a, Option<ConsentRecord>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT subject, client_id, resource, scope, updated_at FROM consents \
                 WHERE subject = ?1 AND client_id = ?2 AND resource = ?3",
            )
            .bind(subject)
            .bind(client_id)
            .bind(resource)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("cannot read a consent"))?;
            row.as_ref().map(consent_from_row).transpose()
        })
    }

    fn put_key(&self, key: StoredKey) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT OR REPLACE INTO signing_keys \
                 (kid, alg, pkcs8, created_at, activates_at, retired_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(key.kid.as_str())
            .bind(key.alg.as_str())
            .bind(key.pkcs8.as_slice())
            .bind(to_db(key.created_at))
            .bind(to_db(key.activates_at))
            .bind(key.retired_at.map(to_db))
            .execute(&self.pool)
            .await
            .map_err(db_error("cannot store a signing key"))?;
            Ok(())
        })
    }

    fn list_keys(&self) -> StoreFuture<'_, Vec<StoredKey>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT kid, alg, pkcs8, created_at, activates_at, retired_at FROM signing_keys \
                 ORDER BY created_at, kid",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(db_error("cannot read the signing keys"))?;
            rows.iter().map(key_from_row).collect()
        })
    }

    fn delete_key<'a>(&'a self, kid: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM signing_keys WHERE kid = ?1")
                .bind(kid)
                .execute(&self.pool)
                .await
                .map_err(db_error("cannot delete a signing key"))?;
            Ok(done.rows_affected() > 0)
        })
    }

    fn list_active_grants<'a>(
        &'a self,
        subject: &'a str,
        now: u64,
    ) -> StoreFuture<'a, Vec<GrantRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(concat!(
                "SELECT ",
                grant_columns!(),
                " FROM grants g WHERE g.subject = ?1 AND g.revoked_at IS NULL \
                 AND g.expires_at > ?2 ORDER BY g.grant_id"
            ))
            .bind(subject)
            .bind(to_db(now))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error("cannot read a user's grants"))?;
            rows.iter().map(grant_from_row).collect()
        })
    }

    fn put_upstream_tokens(&self, record: UpstreamTokenRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query(concat!(
                "INSERT OR REPLACE INTO upstream_tokens (",
                upstream_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL)"
            ))
            .bind(record.subject.as_str())
            .bind(record.upstream.as_str())
            .bind(record.key_id.as_str())
            .bind(record.nonce.as_slice())
            .bind(record.ciphertext.as_slice())
            .bind(to_db(record.updated_at))
            .execute(&self.pool)
            .await
            .map_err(db_error("cannot store upstream tokens"))?;
            Ok(())
        })
    }

    fn get_upstream_tokens<'a>(
        &'a self,
        subject: &'a str,
        upstream: &'a str,
    ) -> StoreFuture<'a, Option<UpstreamTokenRecord>> {
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                upstream_columns!(),
                " FROM upstream_tokens WHERE subject = ?1 AND upstream = ?2"
            ))
            .bind(subject)
            .bind(upstream)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("cannot read upstream tokens"))?;
            row.as_ref().map(upstream_from_row).transpose()
        })
    }

    fn delete_upstream_tokens<'a>(&'a self, subject: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM upstream_tokens WHERE subject = ?1")
                .bind(subject)
                .execute(&self.pool)
                .await
                .map_err(db_error("cannot delete upstream tokens"))?;
            Ok(done.rows_affected())
        })
    }

    fn lease_upstream_refresh<'a>(
        &'a self,
        subject: &'a str,
        upstream: &'a str,
        lease: RefreshLease,
        now: u64,
    ) -> StoreFuture<'a, LeaseTake> {
        Box::pin(async move {
            // One statement: SQLite runs it under the write lock, so one caller at a time
            // takes a free (or ended) lease. (`fetch_all` runs it to completion.)
            let taken = sqlx::query(concat!(
                "UPDATE upstream_tokens SET lease_holder = ?3, lease_until = ?4 \
                 WHERE subject = ?1 AND upstream = ?2 \
                 AND (lease_holder IS NULL OR lease_until IS NULL OR lease_until <= ?5) \
                 RETURNING ",
                upstream_columns!()
            ))
            .bind(subject)
            .bind(upstream)
            .bind(lease.holder.as_str())
            .bind(to_db(lease.until))
            .bind(to_db(now))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error("cannot lease an upstream refresh"))?;
            if let Some(row) = taken.first() {
                return Ok(LeaseTake::Granted(upstream_from_row(row)?));
            }
            let until: Option<Option<i64>> = sqlx::query_scalar(
                "SELECT lease_until FROM upstream_tokens WHERE subject = ?1 AND upstream = ?2",
            )
            .bind(subject)
            .bind(upstream)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("cannot read upstream tokens"))?;
            Ok(match until {
                None => LeaseTake::Missing,
                Some(until) => LeaseTake::Busy {
                    until: until.map_or(0, |t| u64::try_from(t).unwrap_or(0)),
                },
            })
        })
    }

    fn finish_upstream_refresh<'a>(
        &'a self,
        record: UpstreamTokenRecord,
        holder: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE upstream_tokens SET key_id = ?3, nonce = ?4, ciphertext = ?5, \
                 updated_at = ?6, lease_holder = NULL, lease_until = NULL \
                 WHERE subject = ?1 AND upstream = ?2 AND lease_holder = ?7",
            )
            .bind(record.subject.as_str())
            .bind(record.upstream.as_str())
            .bind(record.key_id.as_str())
            .bind(record.nonce.as_slice())
            .bind(record.ciphertext.as_slice())
            .bind(to_db(record.updated_at))
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(db_error("cannot store refreshed upstream tokens"))?;
            Ok(done.rows_affected() > 0)
        })
    }

    fn release_upstream_refresh<'a>(
        &'a self,
        subject: &'a str,
        upstream: &'a str,
        holder: &'a str,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE upstream_tokens SET lease_holder = NULL, lease_until = NULL \
                 WHERE subject = ?1 AND upstream = ?2 AND lease_holder = ?3",
            )
            .bind(subject)
            .bind(upstream)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(db_error("cannot release an upstream refresh"))?;
            Ok(())
        })
    }

    fn put_flow(&self, record: FlowRecord, _now: u64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT OR REPLACE INTO flows (kind, key, subject, value, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(record.kind.as_str())
            .bind(record.key.as_bytes().as_slice())
            .bind(record.subject.as_deref())
            .bind(record.value.as_slice())
            .bind(to_db(record.expires_at))
            .execute(&self.light)
            .await
            .map_err(db_error("cannot store a browser flow"))?;
            Ok(())
        })
    }

    fn get_flow<'a>(
        &'a self,
        kind: FlowKind,
        key: &'a TokenHash,
        now: u64,
    ) -> StoreFuture<'a, Option<FlowRecord>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT kind, key, subject, value, expires_at FROM flows \
                 WHERE kind = ?1 AND key = ?2 AND expires_at > ?3",
            )
            .bind(kind.as_str())
            .bind(key.as_bytes().as_slice())
            .bind(to_db(now))
            .fetch_optional(&self.light)
            .await
            .map_err(db_error("cannot read a browser flow"))?;
            row.as_ref().map(flow_from_row).transpose()
        })
    }

    fn take_flow<'a>(
        &'a self,
        kind: FlowKind,
        key: &'a TokenHash,
        now: u64,
    ) -> StoreFuture<'a, Option<FlowRecord>> {
        Box::pin(async move {
            let row = sqlx::query(
                "DELETE FROM flows WHERE kind = ?1 AND key = ?2 \
                 RETURNING kind, key, subject, value, expires_at",
            )
            .bind(kind.as_str())
            .bind(key.as_bytes().as_slice())
            .fetch_optional(&self.light)
            .await
            .map_err(db_error("cannot take a browser flow"))?;
            let record = row.as_ref().map(flow_from_row).transpose()?;
            Ok(record.filter(|r| r.expires_at > now))
        })
    }

    fn delete_flows_of<'a>(&'a self, kind: FlowKind, subject: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM flows WHERE kind = ?1 AND subject = ?2")
                .bind(kind.as_str())
                .bind(subject)
                .execute(&self.light)
                .await
                .map_err(db_error("cannot end browser flows"))?;
            Ok(done.rows_affected())
        })
    }

    fn count_event<'a>(&'a self, key: &'a str, window: u64, now: u64) -> StoreFuture<'a, Window> {
        Box::pin(async move {
            let (count, ends_at): (i64, i64) = sqlx::query_as(
                "INSERT INTO rate_windows (key, count, ends_at) VALUES (?1, 1, ?3) \
                 ON CONFLICT (key) DO UPDATE SET \
                   count = CASE WHEN ends_at <= ?2 THEN 1 ELSE count + 1 END, \
                   ends_at = CASE WHEN ends_at <= ?2 THEN ?3 ELSE ends_at END \
                 RETURNING count, ends_at",
            )
            .bind(key)
            .bind(to_db(now))
            .bind(to_db(now.saturating_add(window)))
            .fetch_one(&self.light)
            .await
            .map_err(db_error("cannot count a rate-limited event"))?;
            Ok(window_from(count, ends_at))
        })
    }

    fn get_window<'a>(&'a self, key: &'a str, now: u64) -> StoreFuture<'a, Option<Window>> {
        Box::pin(async move {
            let row: Option<(i64, i64)> = sqlx::query_as(
                "SELECT count, ends_at FROM rate_windows WHERE key = ?1 AND ends_at > ?2",
            )
            .bind(key)
            .bind(to_db(now))
            .fetch_optional(&self.light)
            .await
            .map_err(db_error("cannot read a rate-limit window"))?;
            Ok(row.map(|(count, ends_at)| window_from(count, ends_at)))
        })
    }

    fn clear_window<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("DELETE FROM rate_windows WHERE key = ?1")
                .bind(key)
                .execute(&self.light)
                .await
                .map_err(db_error("cannot clear a rate-limit window"))?;
            Ok(())
        })
    }

    fn try_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        until: u64,
        now: u64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let done = sqlx::query(
                "INSERT INTO leases (name, holder, until) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
                 WHERE leases.holder = excluded.holder OR leases.until <= ?4",
            )
            .bind(name)
            .bind(holder)
            .bind(to_db(until))
            .bind(to_db(now))
            .execute(&self.light)
            .await
            .map_err(db_error("cannot take a lease"))?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn release_lease<'a>(&'a self, name: &'a str, holder: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("DELETE FROM leases WHERE name = ?1 AND holder = ?2")
                .bind(name)
                .bind(holder)
                .execute(&self.light)
                .await
                .map_err(db_error("cannot release a lease"))?;
            Ok(())
        })
    }

    fn purge_expired(&self, now: u64) -> StoreFuture<'_, u64> {
        Box::pin(self.purge(now))
    }
}
