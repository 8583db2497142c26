//! [`Database`]: pick and open a store from one setting (a command-line flag, an environment
//! variable, a config file), as the demo server and the gateway do.

use std::{fmt, sync::Arc};

use super::{MemoryStore, Store, StoreError};

/// Where a server keeps its state, read from one string by [`Database::parse`]:
///
/// | value | store |
/// |---|---|
/// | `:memory:` | [`MemoryStore`]: forgets everything on restart |
/// | `postgres://…`, `postgresql://…` | `PostgresStore` (feature `postgres`), shared by replicas |
/// | anything else | the path of a `SqliteStore` file (feature `sqlite`), created if missing |
///
/// ```
/// use mcp_auth_server::store::Database;
///
/// assert!(matches!(Database::parse(":memory:", None)?, Database::Memory));
/// # #[cfg(feature = "sqlite")]
/// assert!(matches!(Database::parse("auth.db", None)?, Database::Sqlite(_)));
/// # #[cfg(feature = "postgres")] {
/// let db = Database::parse("postgres://mcp:s3cret@127.0.0.1:5432/auth", Some("gw".into()))?;
/// assert!(db.is_postgres());
/// assert!(!format!("{db:?}").contains("s3cret"));
/// # }
/// # Ok::<(), mcp_auth_server::store::StoreError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Database {
    /// In memory: for tests and demos.
    Memory,
    /// A SQLite file (created if missing): one process on one machine.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database, shared by every replica pointed at it. `Debug` shows no password.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(super::PostgresOptions),
}

fn is_postgres_url(value: &str) -> bool {
    let head = value.get(..13).unwrap_or(value).to_ascii_lowercase();
    head.starts_with("postgres://") || head.starts_with("postgresql://")
}

impl Database {
    /// Reads `value` as the table above says. `schema` is the PostgreSQL schema to keep the
    /// tables in (created if missing; without it, the URL's `search_path`).
    ///
    /// # Errors
    /// A [`StoreError`] naming the missing cargo feature when `value` asks for a backend this
    /// build does not have, or when a `schema` is given for anything but PostgreSQL.
    pub fn parse(value: &str, schema: Option<String>) -> Result<Self, StoreError> {
        if is_postgres_url(value) {
            #[cfg(feature = "postgres")]
            {
                let options = super::PostgresOptions::new(value);
                return Ok(Self::Postgres(match schema {
                    Some(schema) => options.schema(schema),
                    None => options,
                }));
            }
            #[cfg(not(feature = "postgres"))]
            return Err(StoreError::new(
                "a PostgreSQL database needs mcp-auth-server's `postgres` feature",
            ));
        }
        if schema.is_some() {
            return Err(StoreError::new(
                "a database schema applies to PostgreSQL only (the database is not a postgres:// URL)",
            ));
        }
        if value == ":memory:" {
            return Ok(Self::Memory);
        }
        #[cfg(feature = "sqlite")]
        return Ok(Self::Sqlite(value.into()));
        #[cfg(not(feature = "sqlite"))]
        Err(StoreError::new(
            "a SQLite database needs mcp-auth-server's `sqlite` feature",
        ))
    }

    /// Whether this is a PostgreSQL database (state shared by replicas).
    pub fn is_postgres(&self) -> bool {
        #[cfg(feature = "postgres")]
        if matches!(self, Self::Postgres(_)) {
            return true;
        }
        false
    }

    /// Opens (and migrates) the store.
    ///
    /// # Errors
    /// The backend's [`StoreError`]: the file or server cannot be reached, the schema is newer
    /// than this server.
    pub async fn open(&self) -> Result<OpenStore, StoreError> {
        Ok(match self {
            Self::Memory => OpenStore {
                store: Arc::new(MemoryStore::new()),
                location: "memory".to_owned(),
                backend: Backend::Memory,
            },
            #[cfg(feature = "sqlite")]
            Self::Sqlite(path) => {
                let store = super::SqliteStore::open(path).await?;
                OpenStore {
                    store: Arc::new(store.clone()),
                    location: path.display().to_string(),
                    backend: Backend::Sqlite(store),
                }
            }
            #[cfg(feature = "postgres")]
            Self::Postgres(options) => {
                let store = super::PostgresStore::connect_with(options.clone()).await?;
                OpenStore {
                    store: Arc::new(store.clone()),
                    location: store.location().to_owned(),
                    backend: Backend::Postgres(store),
                }
            }
        })
    }
}

#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
impl From<std::path::PathBuf> for Database {
    /// A SQLite file.
    fn from(path: std::path::PathBuf) -> Self {
        Self::Sqlite(path)
    }
}

/// A store opened by [`Database::open`]: hand [`store`](Self::store) to
/// [`AuthorizationServerBuilder::shared_store`](crate::AuthorizationServerBuilder::shared_store),
/// and [`close`](Self::close) it on shutdown.
///
/// ```
/// use mcp_auth_server::{AuthorizationServer, store::Database};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let opened = Database::parse(":memory:", None)?.open().await?;
/// let server = AuthorizationServer::builder("http://127.0.0.1:8080")
///     .resource("http://127.0.0.1:8080/mcp")
///     .shared_store(opened.store())
///     .build()
///     .await?;
/// assert_eq!(opened.location(), "memory");
/// # drop(server);
/// opened.close().await;
/// # Ok(())
/// # }
/// ```
pub struct OpenStore {
    store: Arc<dyn Store>,
    location: String,
    backend: Backend,
}

enum Backend {
    Memory,
    #[cfg(feature = "sqlite")]
    Sqlite(super::SqliteStore),
    #[cfg(feature = "postgres")]
    Postgres(super::PostgresStore),
}

impl fmt::Debug for OpenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl OpenStore {
    /// The store, to share with the server.
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// Where the state is, for people: `memory`, the SQLite path, or the PostgreSQL host,
    /// database and schema (never a password).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Closes the connections (graceful shutdown): later calls on the store fail.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Memory => {}
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(store) => store.close().await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(store) => store.close().await,
        }
    }
}
