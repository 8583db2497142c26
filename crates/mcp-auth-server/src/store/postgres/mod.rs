//! [`PostgresStore`]: a shared PostgreSQL database (sqlx), so that several replicas of the
//! authorization server act as one.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Executor, Postgres, Transaction};

use super::records::{foreign_refresh, merge_scopes};
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

mod flows;
mod store_impl;
mod upstream;

/// What [`PostgresOptions::new`] starts from.
const DEFAULT_MAX_CONNECTIONS: u32 = 10;
const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest schema name PostgreSQL keeps (NAMEDATALEN - 1).
const MAX_SCHEMA_LEN: usize = 63;

/// How to connect a [`PostgresStore`]: the URL, the schema, and the bounds that keep a database
/// that is down or slow from stalling the server.
///
/// - `max_connections` (default 10): the pool's size, and so the most statements this process
///   runs at once; callers beyond it wait for a connection.
/// - `acquire_timeout` (default 5 s): how long a call waits for a connection (including
///   connecting, and retrying while the database refuses connections) before it fails with a
///   [`StoreError`]. Waiters never open connections beyond the pool.
/// - `statement_timeout` (default 5 s; `None`: the server's setting): PostgreSQL cancels a
///   statement, and so the store call fails, when it runs longer, lock waits included.
///   Migrations at start run without it.
/// - `schema` (default: the URL's `search_path`, usually `public`): the schema the tables live
///   in, created if missing, so that several servers, or tests, can share one database. Letters,
///   digits and `_` only, at most 63 characters.
///
/// `Debug` shows the URL without its password.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use mcp_auth_server::store::PostgresOptions;
///
/// let options = PostgresOptions::new("postgres://mcp:s3cret@db.internal:5432/auth")
///     .schema("mcp_auth")
///     .max_connections(20)
///     .acquire_timeout(Duration::from_secs(2))
///     .statement_timeout(Some(Duration::from_secs(3)));
/// let shown = format!("{options:?}");
/// assert!(shown.contains("db.internal") && !shown.contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct PostgresOptions {
    url: String,
    schema: Option<String>,
    max_connections: u32,
    acquire_timeout: Duration,
    statement_timeout: Option<Duration>,
}

impl PostgresOptions {
    /// The defaults for a `postgres://` (or `postgresql://`) URL, as libpq takes it
    /// (`postgres://user:password@host:port/database?sslmode=...&options=...`).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            statement_timeout: Some(DEFAULT_STATEMENT_TIMEOUT),
        }
    }

    /// Keep the tables in this schema (created if missing) instead of the URL's `search_path`.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The most connections the pool opens (at least 1).
    #[must_use]
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// How long a call waits for a connection before it fails.
    #[must_use]
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// How long PostgreSQL lets one statement run (`None`: the server's own setting).
    #[must_use]
    pub fn statement_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.statement_timeout = timeout;
        self
    }
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &redact_url(&self.url))
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

/// `url` with its password (in the authority or a `password` parameter) replaced.
fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "(not a URL)".to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("REDACTED"));
    }
    if parsed
        .query_pairs()
        .any(|(k, _)| k.eq_ignore_ascii_case("password"))
    {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("password") {
                    "REDACTED".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.into()
}

/// A PostgreSQL store: one database shared by every replica of the server.
///
/// - The schema is embedded in the binary and migrated at connect time
///   (`migrations/postgres/*.sql`, tracked in sqlx's `_sqlx_migrations` table in the store's
///   schema, under an advisory lock so that replicas starting at once migrate once). A database
///   migrated by a newer server is refused.
/// - [`take_code`](Store::take_code) and [`lease_upstream_refresh`](Store::lease_upstream_refresh)
///   are one conditional `UPDATE … RETURNING`; [`take_flow`](Store::take_flow) one
///   `DELETE … RETURNING`; [`count_event`](Store::count_event),
///   [`try_lease`](Store::try_lease) and [`put_public_client`](Store::put_public_client) one
///   `INSERT … ON CONFLICT`. [`rotate_refresh`](Store::rotate_refresh) and
///   [`revoke_grant`](Store::revoke_grant) lock the grant's row (`SELECT … FOR NO KEY UPDATE`)
///   in a transaction, so that every change to one refresh-token family, from any process,
///   happens one at a time; [`put_consent`](Store::put_consent) locks the consent's row.
/// - Hashes are `BYTEA`, client metadata JSON text, times `BIGINT` (times beyond `i64::MAX` are
///   stored as `i64::MAX`); lists come back in byte order (`COLLATE "C"`), as from the other
///   backends.
/// - PostgreSQL text cannot hold a NUL character: looking up an id that has one finds nothing
///   (as it would in any other backend), storing one fails.
/// - TLS: this build connects without it (`sslmode=prefer` falls back to plain TCP,
///   `sslmode=require` fails): use a local socket or loopback, or a private network.
///
/// Bounds ([`PostgresOptions`]): a database that is down or slow makes calls fail with a
/// [`StoreError`] after the acquire timeout or the statement timeout, never more connections
/// than the pool's size. `Debug` shows the host, database and schema, never the password.
///
/// # Example
///
/// ```no_run
/// use mcp_auth_server::AuthorizationServer;
/// use mcp_auth_server::store::{PostgresOptions, PostgresStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::connect_with(
///     PostgresOptions::new("postgres://mcp@127.0.0.1:5432/auth").schema("mcp_auth"),
/// )
/// .await?;
/// let server = AuthorizationServer::builder("https://auth.example.com")
///     .resource("https://mcp.example.com/mcp")
///     .store(store.clone())
///     .build()
///     .await?;
/// # drop(server);
/// // ... serve; on shutdown:
/// store.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    location: Arc<str>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.location)
            .field("connections", &self.pool.size())
            .finish()
    }
}

impl PostgresStore {
    /// Connect with the defaults of [`PostgresOptions::new`] and migrate.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), mcp_auth_server::store::StoreError> {
    /// let store = mcp_auth_server::store::PostgresStore::connect(
    ///     "postgres://mcp@127.0.0.1:5432/auth",
    /// )
    /// .await?;
    /// # store.close().await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// An invalid URL, a database that cannot be reached within the acquire timeout, a failed
    /// migration, or a schema newer than this server knows.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PostgresOptions::new(url)).await
    }

    /// Connect with chosen [`PostgresOptions`], create the schema if it is missing, and
    /// migrate.
    ///
    /// ```no_run
    /// use mcp_auth_server::store::{PostgresOptions, PostgresStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), mcp_auth_server::store::StoreError> {
    /// let store = PostgresStore::connect_with(
    ///     PostgresOptions::new("postgres://mcp@127.0.0.1:5432/auth").schema("tenant_a"),
    /// )
    /// .await?;
    /// # store.close().await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`connect`](Self::connect); also an invalid schema name.
    pub async fn connect_with(options: PostgresOptions) -> Result<Self, StoreError> {
        let scheme = options.url.split_once("://").map(|(scheme, _)| scheme);
        if !scheme.is_some_and(|s| {
            s.eq_ignore_ascii_case("postgres") || s.eq_ignore_ascii_case("postgresql")
        }) {
            return Err(StoreError::new(
                "invalid PostgreSQL URL: it must start with postgres:// or postgresql://",
            ));
        }
        let mut connect = PgConnectOptions::from_str(&options.url)
            .map_err(|e| StoreError::with_source("invalid PostgreSQL URL", e))?;
        if connect.get_application_name().is_none() {
            connect = connect.application_name("mcp-auth-server");
        }
        let mut location = format!(
            "postgres://{}@{}:{}/{}",
            connect.get_username(),
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or("")
        );
        if let Some(schema) = &options.schema {
            let quoted = quote_schema(schema)?;
            create_schema(&connect, &quoted, options.acquire_timeout).await?;
            connect = connect.options([("search_path", quoted)]);
            location.push_str(&format!(" (schema {schema})"));
        }
        if let Some(timeout) = options.statement_timeout {
            connect = connect.options([("statement_timeout", timeout.as_millis().max(1))]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(db_error("cannot connect to the PostgreSQL database"))?;
        if let Err(error) = migrate(&pool).await {
            pool.close().await;
            return Err(error);
        }
        Ok(Self {
            pool,
            location: location.into(),
        })
    }

    /// Where the store is, for logs and banners: `postgres://user@host:port/database` and the
    /// schema, never the password.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), mcp_auth_server::store::StoreError> {
    /// use mcp_auth_server::store::{PostgresOptions, PostgresStore};
    ///
    /// let store = PostgresStore::connect_with(
    ///     PostgresOptions::new("postgres://mcp:s3cret@127.0.0.1/auth").schema("demo"),
    /// )
    /// .await?;
    /// assert_eq!(store.location(), "postgres://mcp@127.0.0.1:5432/auth (schema demo)");
    /// # Ok(())
    /// # }
    /// ```
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Close every connection, waiting for those in use to be returned (graceful shutdown).
    /// Later calls on this store or its clones fail.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), mcp_auth_server::store::StoreError> {
    /// let store = mcp_auth_server::store::PostgresStore::connect("postgres://mcp@127.0.0.1/auth")
    ///     .await?;
    /// store.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `schema` as a quoted identifier, when it is a name this store accepts.
fn quote_schema(schema: &str) -> Result<String, StoreError> {
    let valid = !schema.is_empty()
        && schema.len() <= MAX_SCHEMA_LEN
        && schema
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(StoreError::new(
            "invalid PostgreSQL schema name: use 1 to 63 letters, digits or underscores",
        ));
    }
    Ok(format!("\"{schema}\""))
}

/// `CREATE SCHEMA IF NOT EXISTS`, on a connection of its own (the pool's connections start in
/// the schema).
///
/// (Boxed, here and in [`migrate`], so that the compiler proves these futures `Send` where they
/// are defined: callers may spawn [`PostgresStore::connect_with`].)
fn create_schema<'a>(
    connect: &'a PgConnectOptions,
    quoted: &'a str,
    timeout: Duration,
) -> StoreFuture<'a, ()> {
    Box::pin(create_schema_within(connect, quoted, timeout))
}

async fn create_schema_within(
    connect: &PgConnectOptions,
    quoted: &str,
    timeout: Duration,
) -> Result<(), StoreError> {
    let created = async {
        let mut conn = PgConnection::connect_with(connect)
            .await
            .map_err(db_error("cannot connect to the PostgreSQL database"))?;
        let create = format!("CREATE SCHEMA IF NOT EXISTS {quoted}");
        let done = conn.execute(create.as_str()).await;
        let _ = conn.close().await;
        match done {
            Ok(_) => Ok(()),
            // Two servers creating it at the same instant: the other one won.
            Err(sqlx::Error::Database(e))
                if matches!(e.code().as_deref(), Some("23505" | "42P06")) =>
            {
                Ok(())
            }
            Err(e) => Err(StoreError::with_source(
                "cannot create the PostgreSQL schema",
                e,
            )),
        }
    };
    tokio::time::timeout(timeout, created)
        .await
        .map_err(|_| StoreError::new("timed out connecting to the PostgreSQL database"))?
}

fn migrate(pool: &PgPool) -> StoreFuture<'_, ()> {
    Box::pin(migrate_pool(pool))
}

async fn migrate_pool(pool: &PgPool) -> Result<(), StoreError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(db_error("cannot connect to the PostgreSQL database"))?;
    // A migration may take longer than a request's statement; the lock wait too, while
    // another replica migrates.
    conn.execute("SET statement_timeout = 0")
        .await
        .map_err(db_error("cannot migrate the PostgreSQL database"))?;
    let migrated = migrate::run(&mut *conn, migrate::POSTGRES, "PostgreSQL").await;
    match migrated {
        Ok(()) => {
            conn.execute("RESET statement_timeout")
                .await
                .map_err(db_error("cannot migrate the PostgreSQL database"))?;
            Ok(())
        }
        Err(error) => {
            // Do not hand a connection in an unknown state back to the pool.
            let _ = conn.close().await;
            Err(error)
        }
    }
}

impl_columns!(PgRow);

/// PostgreSQL text cannot hold NUL: no stored id has one, so a lookup of such an id finds
/// nothing without asking the database (which would refuse the parameter).
fn has_nul(values: &[&str]) -> bool {
    values.iter().any(|v| v.contains('\0'))
}

fn ready<'a, T: Send + 'a>(value: T) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(Ok(value)))
}

async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, StoreError> {
    pool.begin()
        .await
        .map_err(db_error("cannot start a transaction"))
}

async fn commit(tx: Transaction<'static, Postgres>) -> Result<(), StoreError> {
    tx.commit()
        .await
        .map_err(db_error("cannot commit a transaction"))
}

async fn insert_refresh(
    tx: &mut Transaction<'static, Postgres>,
    refresh: &RefreshRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens \
         (hash, grant_id, scope, issued_at, expires_at, state, parent, rotated_at, dpop_jkt) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
    .execute(&mut **tx)
    .await
    .map_err(db_error("cannot store a refresh token"))?;
    Ok(())
}

/// Lock a grant's row for the rest of `tx`: every change to a refresh-token family (rotations of
/// any of its tokens, its revocation) takes this lock first, so they happen one at a time across
/// processes. Returns the grant's `(expires_at, revoked_at)`, `None` if it does not exist.
async fn lock_grant(
    tx: &mut Transaction<'static, Postgres>,
    grant_id: &str,
) -> Result<Option<(u64, Option<u64>)>, StoreError> {
    let row = sqlx::query(
        "SELECT expires_at, revoked_at FROM grants WHERE grant_id = $1 FOR NO KEY UPDATE",
    )
    .bind(grant_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error("cannot lock a grant"))?;
    row.map(|row| Ok((row.time("expires_at")?, row.opt_time("revoked_at")?)))
        .transpose()
}

/// Revoke a grant and its family inside `tx`; whether the grant was active at `now` before.
async fn revoke_family(
    tx: &mut Transaction<'static, Postgres>,
    grant_id: &str,
    now: u64,
) -> Result<bool, StoreError> {
    let Some((expires_at, revoked_at)) = lock_grant(tx, grant_id).await? else {
        return Ok(false);
    };
    let was_active = revoked_at.is_none() && now < expires_at;
    sqlx::query("UPDATE grants SET revoked_at = COALESCE(revoked_at, $2) WHERE grant_id = $1")
        .bind(grant_id)
        .bind(to_db(now))
        .execute(&mut **tx)
        .await
        .map_err(db_error("cannot revoke a grant"))?;
    sqlx::query("UPDATE refresh_tokens SET state = 'revoked' WHERE grant_id = $1")
        .bind(grant_id)
        .execute(&mut **tx)
        .await
        .map_err(db_error("cannot revoke refresh tokens"))?;
    Ok(was_active)
}

impl PostgresStore {
    async fn rotate(
        &self,
        old: &TokenHash,
        mut new: RefreshRecord,
        now: u64,
        grace: u64,
    ) -> Result<Rotation, StoreError> {
        let old_bytes = old.as_bytes().as_slice();
        let mut tx = begin(&self.pool).await?;
        // A token's grant never changes: find it and lock it in one statement, then read the
        // token as it is now (each statement sees what committed before it started). Four
        // round trips in all for a rotation: this, the read, one write statement, the commit.
        let grant = sqlx::query(
            "SELECT grant_id, expires_at, revoked_at FROM grants \
             WHERE grant_id = (SELECT grant_id FROM refresh_tokens WHERE hash = $1) \
             FOR NO KEY UPDATE",
        )
        .bind(old_bytes)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error("cannot lock a grant"))?;
        let grant = grant
            .map(|row| {
                Ok::<_, StoreError>((
                    row.text("grant_id")?,
                    row.time("expires_at")?,
                    row.opt_time("revoked_at")?,
                ))
            })
            .transpose()?;
        let row =
            sqlx::query("SELECT state, parent, rotated_at FROM refresh_tokens WHERE hash = $1")
                .bind(old_bytes)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error("cannot read a refresh token"))?;
        let Some(row) = row else {
            // Unknown, or purged meanwhile.
            return Ok(Rotation::Unknown);
        };
        let state = state_from_name(&row.text("state")?)?;
        // No grant: deleted (the token is as good as revoked).
        let Some((grant_id, grant_expires_at, None)) = grant else {
            return Ok(Rotation::Revoked);
        };
        if state == RefreshState::Revoked {
            return Ok(Rotation::Revoked);
        }
        if new.grant_id != grant_id {
            return Err(foreign_refresh());
        }
        new.parent = Some(*old);
        new.rotated_at = None;
        let outcome = if state == RefreshState::Rotated {
            let grant_active = now < grant_expires_at;
            let in_window = row
                .opt_time("rotated_at")?
                .is_some_and(|at| grace > 0 && now.saturating_sub(at) <= grace);
            // (successors, of which used): the grace window needs some and none used.
            let counts = sqlx::query(
                "SELECT COUNT(*) AS total, COUNT(*) FILTER (WHERE state <> 'active') AS used \
                 FROM refresh_tokens WHERE parent = $1",
            )
            .bind(old_bytes)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error("cannot read refresh successors"))?;
            if in_window && grant_active && counts.int("total")? > 0 && counts.int("used")? == 0 {
                insert_refresh(&mut tx, &new).await?;
                Rotation::WithinGrace
            } else {
                revoke_family(&mut tx, &grant_id, now).await?;
                Rotation::Reused { grant_id }
            }
        } else {
            // One statement: the first use of a successor supersedes its unused siblings (one
            // live branch), the presented token is rotated, its successor inserted. The three
            // touch different rows (the successor is new), so one snapshot serves them all.
            let parent = row.opt_hash("parent")?;
            sqlx::query(
                "WITH siblings AS (UPDATE refresh_tokens SET state = 'rotated' \
                     WHERE parent = $3 AND hash <> $1 AND state = 'active'), \
                 presented AS (UPDATE refresh_tokens SET state = 'rotated', rotated_at = $2 \
                     WHERE hash = $1) \
                 INSERT INTO refresh_tokens \
                 (hash, grant_id, scope, issued_at, expires_at, state, parent, rotated_at, dpop_jkt) \
                 VALUES ($4, $5, $6, $7, $8, $9, $1, NULL, $10)",
            )
            .bind(old_bytes)
            .bind(to_db(now))
            .bind(parent.as_ref().map(|p| p.as_bytes().as_slice()))
            .bind(new.hash.as_bytes().as_slice())
            .bind(new.grant_id.as_str())
            .bind(new.scope.as_str())
            .bind(to_db(new.issued_at))
            .bind(to_db(new.expires_at))
            .bind(new.state.as_str())
            .bind(new.dpop_jkt.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(db_error("cannot rotate a refresh token"))?;
            Rotation::Rotated
        };
        commit(tx).await?;
        Ok(outcome)
    }

    async fn purge(&self, now: u64) -> Result<u64, StoreError> {
        let now = to_db(now);
        let mut tx = begin(&self.pool).await?;
        // Expired grants are locked first, as rotations and revocations lock a grant before
        // its tokens: the same order, so purging never deadlocks with them.
        sqlx::query("SELECT grant_id FROM grants WHERE expires_at <= $1 FOR UPDATE")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_error("cannot purge expired records"))?;
        let mut removed = 0;
        for statement in [
            "DELETE FROM codes WHERE expires_at <= $1",
            "DELETE FROM refresh_tokens WHERE expires_at <= $1 \
             OR grant_id IN (SELECT grant_id FROM grants WHERE expires_at <= $1)",
            "DELETE FROM grants WHERE expires_at <= $1",
            "DELETE FROM revoked_access_tokens WHERE expires_at <= $1",
            "DELETE FROM flows WHERE expires_at <= $1",
            "DELETE FROM rate_windows WHERE ends_at <= $1",
            "DELETE FROM leases WHERE until <= $1",
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

    async fn consent(&self, consent: ConsentRecord) -> Result<(), StoreError> {
        let mut tx = begin(&self.pool).await?;
        // Merge under the row's lock; when there is no row yet, insert one, and if another
        // caller inserted it first, merge into theirs.
        for _ in 0..2 {
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT scope FROM consents \
                 WHERE subject = $1 AND client_id = $2 AND resource = $3 FOR UPDATE",
            )
            .bind(consent.subject.as_str())
            .bind(consent.client_id.as_str())
            .bind(consent.resource.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error("cannot read a consent"))?;
            let done = match &existing {
                Some(_) => sqlx::query(
                    "UPDATE consents SET scope = $4, updated_at = $5 \
                     WHERE subject = $1 AND client_id = $2 AND resource = $3",
                ),
                None => sqlx::query(
                    "INSERT INTO consents (subject, client_id, resource, scope, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                ),
            }
            .bind(consent.subject.as_str())
            .bind(consent.client_id.as_str())
            .bind(consent.resource.as_str())
            .bind(merge_scopes(
                existing.as_deref().unwrap_or(""),
                &consent.scope,
            ))
            .bind(to_db(consent.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(db_error("cannot store a consent"))?;
            if done.rows_affected() > 0 {
                return commit(tx).await;
            }
        }
        Err(StoreError::new(
            "a consent changed while it was being stored",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_redacted_from_the_url_and_its_parameters() {
        let shown = redact_url("postgres://mcp:s3cret@db:5432/auth?sslmode=disable");
        assert_eq!(
            shown,
            "postgres://mcp:REDACTED@db:5432/auth?sslmode=disable"
        );
        let shown = redact_url("postgresql://db/auth?user=mcp&password=s3cret");
        assert!(
            !shown.contains("s3cret") && shown.contains("user=mcp"),
            "{shown}"
        );
        assert_eq!(redact_url("not a url s3cret"), "(not a URL)");
    }

    #[test]
    fn schema_names_are_letters_digits_and_underscores() {
        assert_eq!(quote_schema("Tenant_1").unwrap(), "\"Tenant_1\"");
        for bad in ["", "a b", "a\"b", "a;b", "a-b", &"x".repeat(64)] {
            assert!(quote_schema(bad).is_err(), "{bad:?}");
        }
    }
}
