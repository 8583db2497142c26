//! [`SqliteStore`]: the embedded, persistent backend (rusqlite: one writer thread with group
//! commit, reads on the caller's thread; migrations embedded).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Params, Row, params};

use super::group_commit::{Commit, Writer, closed};
use super::records::{foreign_refresh, merge_scopes};
use super::sql::{
    Columns, client_columns, client_from_row, code_columns, code_from_row, consent_from_row,
    db_error, flow_from_row, from_db, grant_columns, grant_from_row, key_from_row, refresh_columns,
    refresh_from_row, serialize_client, state_from_name, to_db, upstream_columns,
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

/// Idle read connections kept open (more are opened while more tasks read at once).
const IDLE_READERS: usize = 4;
/// Prepared statements cached per connection: every statement the store runs.
const STATEMENT_CACHE: usize = 96;
/// How long a statement waits for another connection's (or process's) write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A SQLite store: the persistent default. Everything survives a restart.
///
/// - The schema is embedded in the binary and migrated on open (`migrations/*.sql`, tracked in
///   sqlx's `_sqlx_migrations` table, so databases made by earlier versions open); opening an
///   up-to-date database again is a no-op.
/// - Files are opened in WAL mode with a 5 s busy timeout and foreign keys on, so that several
///   processes can share one file.
/// - Every write goes to one writer thread that owns the writing connection and commits the
///   writes queued at that moment together, in one `BEGIN IMMEDIATE` transaction and one
///   `fsync` (group commit: concurrent grants share a commit); each call is answered once its
///   transaction has committed. Reads run on the calling task's thread on a small pool of read
///   connections (in WAL mode they never wait for the writer). Statements are prepared once
///   per connection.
/// - [`take_code`](Store::take_code) is one conditional `UPDATE … RETURNING`;
///   [`rotate_refresh`](Store::rotate_refresh), [`revoke_grant`](Store::revoke_grant),
///   [`put_consent`](Store::put_consent) and [`purge_expired`](Store::purge_expired) each run in
///   one transaction (as does every write).
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
    inner: Arc<Inner>,
}

struct Inner {
    /// Every write: durable ones (grants, refresh rotation, revocation, clients, consents,
    /// keys, upstream tokens) commit at the chosen [`Durability`]; short-lived ones (codes,
    /// browser flows, rate-limit windows, leases) commit without their own `fsync`
    /// (`synchronous=NORMAL`). The next durable commit makes them durable too (the WAL is
    /// written in order), so they are lost only with the power or the OS, and then only what a
    /// retry recovers: a code or a sign-in in progress, a counter.
    writer: Writer,
    readers: Readers,
    closed: AtomicBool,
    location: Box<str>,
}

/// Where reads run.
enum Readers {
    /// A file: idle read connections, opened as needed.
    Pool {
        path: PathBuf,
        idle: Mutex<Vec<Connection>>,
    },
    /// An in-memory database: its one connection, shared with the writer thread.
    Shared(Arc<Mutex<Connection>>),
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.inner.location)
            .finish_non_exhaustive()
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
    /// one `fsync` per durable commit, shared by the durable writes that arrive together
    /// (group commit): at most one per authorization-code grant, one per refresh.
    #[default]
    Full,
    /// `synchronous=NORMAL` in WAL mode: commits survive a crash of the process, but the last
    /// ones may be lost on power failure (the database is never corrupted). A lost rotation
    /// means a refresh token that was already exchanged is accepted once more.
    Normal,
}

/// What to open.
enum Target {
    File {
        path: PathBuf,
        create: bool,
        read_only: bool,
    },
    Memory,
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
        let target = Target::File {
            path: path.as_ref().to_owned(),
            create: true,
            read_only: false,
        };
        Self::start(target, durability).await
    }

    /// Connect with a SQLite URL as sqlx writes them (`sqlite://path/to/file.db?mode=rwc`,
    /// `sqlite:file.db`, `sqlite::memory:`) and migrate. The URL's `mode` decides whether a
    /// missing file is created (`rwc`; `rw`, the default, requires it to exist; `ro` opens it read
    /// only; `memory` is an in-memory database). WAL, the busy timeout and foreign keys are set
    /// as by [`open`](Self::open). An in-memory database lives as long as the returned store
    /// (and its clones).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::start(parse_url(url)?, Durability::Full).await
    }

    /// Finish the writes already queued, then close every connection (graceful shutdown).
    /// Later calls on this store or its clones fail.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        if let Readers::Pool { idle, .. } = &self.inner.readers {
            idle.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
        self.inner.writer.close().await;
    }

    async fn start(target: Target, durability: Durability) -> Result<Self, StoreError> {
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        let (location, readers, open): (String, _, Box<dyn FnOnce() -> _ + Send>) = match target {
            Target::File {
                path,
                create,
                read_only,
            } => {
                let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
                flags |= if read_only {
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                } else if create {
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
                } else {
                    OpenFlags::SQLITE_OPEN_READ_WRITE
                };
                let location = path.display().to_string();
                let writer_path = path.clone();
                let readers = Readers::Pool {
                    path,
                    idle: Mutex::new(Vec::new()),
                };
                let open = move || {
                    Connection::open_with_flags(&writer_path, flags)
                        .map_err(db_error("cannot open the SQLite database"))
                };
                (location, Some(readers), Box::new(open))
            }
            Target::Memory => {
                let open = || {
                    Connection::open_in_memory()
                        .map_err(db_error("cannot open the SQLite database"))
                };
                (":memory:".to_owned(), None, Box::new(open))
            }
        };
        let (writer, conn) = Writer::start(
            move || {
                let mut conn = open()?;
                configure(&conn)?;
                conn.execute_batch(match synchronous {
                    "FULL" => "PRAGMA synchronous = FULL",
                    _ => "PRAGMA synchronous = NORMAL",
                })
                .map_err(db_error("cannot configure the SQLite database"))?;
                migrate::run_sqlite(&mut conn)?;
                Ok(conn)
            },
            synchronous,
        )
        .await?;
        let readers = readers.unwrap_or(Readers::Shared(conn));
        Ok(Self {
            inner: Arc::new(Inner {
                writer,
                readers,
                closed: AtomicBool::new(false),
                location: location.into(),
            }),
        })
    }

    /// Run `write` on the writer thread; its result once its transaction has committed.
    async fn write<T, F>(&self, commit: Commit, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        self.inner.writer.run(commit, write).await
    }

    /// Run `read` on a read connection, on this thread (WAL readers do not wait for the
    /// writer; they see every committed write).
    fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        match &self.inner.readers {
            Readers::Shared(conn) => read(&conn.lock().unwrap_or_else(PoisonError::into_inner)),
            Readers::Pool { path, idle } => {
                let idle_conn = idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
                let conn = match idle_conn {
                    Some(conn) => conn,
                    None => open_reader(path)?,
                };
                let result = read(&conn);
                let mut idle = idle.lock().unwrap_or_else(PoisonError::into_inner);
                if idle.len() < IDLE_READERS && !self.inner.closed.load(Ordering::Acquire) {
                    idle.push(conn);
                }
                result
            }
        }
    }
}

/// The settings of every connection: WAL, the busy timeout, foreign keys, the statement cache.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    let failed = db_error("cannot configure the SQLite database");
    conn.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Answers the mode now in force ("memory" for an in-memory database).
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .map_err(db_error("cannot configure the SQLite database"))?;
    conn.execute_batch("PRAGMA foreign_keys = ON")
        .map_err(db_error("cannot configure the SQLite database"))
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(db_error("cannot open the SQLite database"))?;
    configure(&conn)?;
    conn.execute_batch("PRAGMA query_only = ON")
        .map_err(db_error("cannot configure the SQLite database"))?;
    Ok(conn)
}

/// A sqlx-style SQLite URL: `sqlite://PATH` or `sqlite:PATH`, with `?mode=ro|rw|rwc|memory`;
/// `sqlite::memory:` is an in-memory database.
fn parse_url(url: &str) -> Result<Target, StoreError> {
    let invalid = |why: &str| StoreError::new(format!("invalid SQLite URL: {why}"));
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| invalid("expected sqlite://PATH or sqlite::memory:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut mode = "rw";
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("mode", value)) => mode = value,
            _ => return Err(invalid("the only parameter understood is mode")),
        }
    }
    if path == ":memory:" || mode == "memory" {
        return Ok(Target::Memory);
    }
    if path.is_empty() {
        return Err(invalid("no file name"));
    }
    let (create, read_only) = match mode {
        "rwc" => (true, false),
        "rw" => (false, false),
        "ro" => (false, true),
        _ => return Err(invalid("mode is one of ro, rw, rwc, memory")),
    };
    Ok(Target::File {
        path: PathBuf::from(path),
        create,
        read_only,
    })
}

// ----- statements -----

impl Columns for Row<'_> {
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.get(column)
            .map_err(db_error("cannot read a stored number"))
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.get(column)
            .map_err(db_error("cannot read a stored number"))
    }
    fn text(&self, column: &str) -> Result<String, StoreError> {
        self.get(column)
            .map_err(db_error("cannot read a stored text"))
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.get(column)
            .map_err(db_error("cannot read a stored text"))
    }
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError> {
        self.get(column)
            .map_err(db_error("cannot read stored bytes"))
    }
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(column)
            .map_err(db_error("cannot read stored bytes"))
    }
    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        self.get(column)
            .map_err(db_error("cannot read a stored flag"))
    }
}

/// Run a statement (prepared once per connection); the number of rows it changed.
fn execute(
    conn: &Connection,
    sql: &'static str,
    params: impl Params,
    context: &'static str,
) -> Result<usize, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute(params))
        .map_err(db_error(context))
}

/// The first row of a query, mapped.
fn query_one<T>(
    conn: &Connection,
    sql: &'static str,
    params: impl Params,
    context: &'static str,
    map: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(db_error(context))?;
    let mut rows = statement.query(params).map_err(db_error(context))?;
    match rows.next().map_err(db_error(context))? {
        Some(row) => map(row).map(Some),
        None => Ok(None),
    }
}

/// Every row of a query (run to completion: an `UPDATE … RETURNING` is done when this returns),
/// mapped.
fn query_all<T>(
    conn: &Connection,
    sql: &'static str,
    params: impl Params,
    context: &'static str,
    mut map: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(db_error(context))?;
    let mut rows = statement.query(params).map_err(db_error(context))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_error(context))? {
        out.push(map(row)?);
    }
    Ok(out)
}

fn blob(hash: &TokenHash) -> &[u8] {
    hash.as_bytes().as_slice()
}

fn insert_refresh(conn: &Connection, refresh: &RefreshRecord) -> Result<(), StoreError> {
    execute(
        conn,
        "INSERT INTO refresh_tokens \
         (hash, grant_id, scope, issued_at, expires_at, state, parent, rotated_at, dpop_jkt) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            blob(&refresh.hash),
            refresh.grant_id,
            refresh.scope,
            to_db(refresh.issued_at),
            to_db(refresh.expires_at),
            refresh.state.as_str(),
            refresh.parent.as_ref().map(blob),
            refresh.rotated_at.map(to_db),
            refresh.dpop_jkt,
        ],
        "cannot store a refresh token",
    )?;
    Ok(())
}

/// Revoke a grant and its family inside the transaction; whether the grant was active at `now`
/// before.
fn revoke_family(conn: &Connection, grant_id: &str, now: u64) -> Result<bool, StoreError> {
    let Some((expires_at, revoked_at)) = query_one(
        conn,
        "SELECT expires_at, revoked_at FROM grants WHERE grant_id = ?1",
        [grant_id],
        "cannot read a grant",
        |row| Ok((row.time("expires_at")?, row.opt_time("revoked_at")?)),
    )?
    else {
        return Ok(false);
    };
    let was_active = revoked_at.is_none() && now < expires_at;
    execute(
        conn,
        "UPDATE grants SET revoked_at = COALESCE(revoked_at, ?2) WHERE grant_id = ?1",
        params![grant_id, to_db(now)],
        "cannot revoke a grant",
    )?;
    execute(
        conn,
        "UPDATE refresh_tokens SET state = 'revoked' WHERE grant_id = ?1",
        [grant_id],
        "cannot revoke refresh tokens",
    )?;
    Ok(was_active)
}

/// What [`rotate`] reads of the presented token and its grant.
struct Presented {
    grant_id: String,
    state: RefreshState,
    rotated_at: Option<u64>,
    grant_revoked: bool,
    grant_expires_at: Option<u64>,
}

/// [`Store::rotate_refresh`] inside the writer's transaction.
fn rotate(
    conn: &Connection,
    old: &TokenHash,
    mut new: RefreshRecord,
    now: u64,
    grace: u64,
) -> Result<Rotation, StoreError> {
    let presented = query_one(
        conn,
        "SELECT r.grant_id, r.state, r.rotated_at, g.grant_id AS live_grant, \
         g.revoked_at, g.expires_at \
         FROM refresh_tokens r LEFT JOIN grants g ON g.grant_id = r.grant_id \
         WHERE r.hash = ?1",
        [blob(old)],
        "cannot read a refresh token",
        |row| {
            Ok(Presented {
                grant_id: row.text("grant_id")?,
                state: state_from_name(&row.text("state")?)?,
                rotated_at: row.opt_time("rotated_at")?,
                grant_revoked: row.opt_text("live_grant")?.is_none()
                    || row.opt_time("revoked_at")?.is_some(),
                grant_expires_at: row.opt_time("expires_at")?,
            })
        },
    )?;
    let Some(presented) = presented else {
        return Ok(Rotation::Unknown);
    };
    if presented.state == RefreshState::Revoked || presented.grant_revoked {
        return Ok(Rotation::Revoked);
    }
    if new.grant_id != presented.grant_id {
        return Err(foreign_refresh());
    }
    new.parent = Some(*old);
    new.rotated_at = None;
    if presented.state == RefreshState::Rotated {
        let grant_active = now < presented.grant_expires_at.unwrap_or(0);
        let in_window = presented
            .rotated_at
            .is_some_and(|at| grace > 0 && now.saturating_sub(at) <= grace);
        // (successors, of which used): the grace window needs some and none used.
        let (total, used) = query_one(
            conn,
            "SELECT COUNT(*) AS total, COALESCE(SUM(state <> 'active'), 0) AS used \
             FROM refresh_tokens WHERE parent = ?1",
            [blob(old)],
            "cannot read refresh successors",
            |row| Ok((row.int("total")?, row.int("used")?)),
        )?
        .unwrap_or((0, 0));
        return Ok(if in_window && grant_active && total > 0 && used == 0 {
            insert_refresh(conn, &new)?;
            Rotation::WithinGrace
        } else {
            revoke_family(conn, &presented.grant_id, now)?;
            Rotation::Reused {
                grant_id: presented.grant_id,
            }
        });
    }
    // The first use of a successor supersedes its unused siblings: one live branch.
    execute(
        conn,
        "UPDATE refresh_tokens SET state = 'rotated' \
         WHERE parent = (SELECT parent FROM refresh_tokens WHERE hash = ?1) \
         AND hash <> ?1 AND state = 'active'",
        [blob(old)],
        "cannot rotate a refresh token",
    )?;
    execute(
        conn,
        "UPDATE refresh_tokens SET state = 'rotated', rotated_at = ?2 WHERE hash = ?1",
        params![blob(old), to_db(now)],
        "cannot rotate a refresh token",
    )?;
    insert_refresh(conn, &new)?;
    Ok(Rotation::Rotated)
}

/// [`Store::create_grant`] inside the writer's transaction.
fn insert_grant(
    conn: &Connection,
    grant: &GrantRecord,
    refresh: Option<&RefreshRecord>,
) -> Result<(), StoreError> {
    execute(
        conn,
        "INSERT INTO grants \
         (grant_id, client_id, subject, scope, resource, created_at, expires_at, revoked_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            grant.grant_id,
            grant.client_id,
            grant.subject,
            grant.scope,
            grant.resource,
            to_db(grant.created_at),
            to_db(grant.expires_at),
            grant.revoked_at.map(to_db),
        ],
        "cannot store a grant",
    )?;
    if let Some(refresh) = refresh {
        insert_refresh(conn, refresh)?;
    }
    Ok(())
}

/// [`Store::purge_expired`] inside the writer's transaction.
fn purge(conn: &Connection, now: u64) -> Result<u64, StoreError> {
    let now = to_db(now);
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
        removed += execute(conn, statement, [now], "cannot purge expired records")?;
    }
    Ok(u64::try_from(removed).unwrap_or(u64::MAX))
}

fn find_public_client(
    conn: &Connection,
    registration_key: &TokenHash,
) -> Result<Option<ClientRecord>, StoreError> {
    query_one(
        conn,
        concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE registration_key = ?1"
        ),
        [blob(registration_key)],
        "cannot read a client",
        |row| client_from_row(row),
    )
}

fn count(rows: usize) -> u64 {
    u64::try_from(rows).unwrap_or(u64::MAX)
}
