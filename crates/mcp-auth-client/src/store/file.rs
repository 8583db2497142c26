//! The file store.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use serde::{Deserialize, Serialize};

use super::{StoreError, StoreFuture, StoreLock, StoredClient, StoredTokens, TokenKey, TokenStore};

/// Tokens and registrations in one JSON file that only its owner can read, surviving restarts and
/// shared safely by several processes.
///
/// - **Owner-only**: on Unix the file (and its lock files) are created with mode `0600`, and a
///   missing directory with `0700`. Secrets are written in clear inside it, like `~/.ssh` keys.
/// - **Atomic writes**: every change reads the file, writes a temporary file beside it, `fsync`s
///   it and renames it over the old one, under an exclusive lock on `<file>.lock`; a crash leaves
///   the old or the new file, never half of one.
/// - **One refresh across processes**: [`lock`](TokenStore::lock) takes an exclusive lock on
///   `<file>.refresh.lock` for the whole refresh; the manager reads the record again inside it and
///   adopts a token another process wrote meanwhile (see the [module docs](crate::store)).
///
/// Nothing is read or created until the first call; a missing file is an empty store.
///
/// # Example
///
/// ```
/// use mcp_auth_client::store::{FileTokenStore, StoredClient, RegistrationKind, TokenStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = std::env::temp_dir().join(format!("mcp-auth-doc-{}", std::process::id()));
/// let store = FileTokenStore::new(dir.join("tokens.json"));
/// let client = StoredClient::new("https://auth.example.com", RegistrationKind::Dynamic, "c1");
/// store.save_client(&client).await?;
///
/// // Another store on the same file (another process, after a restart) sees it.
/// let again = FileTokenStore::new(dir.join("tokens.json"));
/// assert_eq!(again.load_client("https://auth.example.com").await?, Some(client));
/// # #[cfg(unix)] {
/// use std::os::unix::fs::PermissionsExt;
/// let mode = std::fs::metadata(store.path())?.permissions().mode();
/// assert_eq!(mode & 0o777, 0o600);
/// # }
/// # std::fs::remove_dir_all(dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FileTokenStore {
    inner: Arc<Paths>,
}

#[derive(Debug)]
struct Paths {
    file: PathBuf,
    write_lock: PathBuf,
    refresh_lock: PathBuf,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Document {
    #[serde(default)]
    version: u32,
    #[serde(default)]
    tokens: Vec<TokenEntry>,
    #[serde(default)]
    clients: Vec<StoredClient>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TokenEntry {
    key: TokenKey,
    tokens: StoredTokens,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl FileTokenStore {
    /// A store kept in the file at `path`.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let file = path.into();
        let with_suffix = |suffix: &str| {
            let mut name = file.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        Self {
            inner: Arc::new(Paths {
                write_lock: with_suffix(".lock"),
                refresh_lock: with_suffix(".refresh.lock"),
                file,
            }),
        }
    }

    /// The file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.file
    }

    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(Document) -> T + Send + 'static,
    ) -> StoreFuture<'static, T> {
        let paths = Arc::clone(&self.inner);
        Box::pin(async move {
            blocking(move || {
                let doc = read_document(&paths.file)?;
                Ok(f(doc))
            })
            .await
        })
    }

    fn modify(&self, f: impl FnOnce(&mut Document) + Send + 'static) -> StoreFuture<'static, ()> {
        let paths = Arc::clone(&self.inner);
        Box::pin(async move {
            blocking(move || {
                ensure_parent(&paths.file)?;
                let lock = open_lock_file(&paths.write_lock)?;
                lock.lock()
                    .map_err(|e| StoreError::with_source("could not lock the token file", e))?;
                let mut doc = read_document(&paths.file)?;
                f(&mut doc);
                doc.version = 1;
                write_document(&paths.file, &doc)
                // `lock` is dropped here: closing the file releases the lock.
            })
            .await
        })
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::with_source("the file task failed", e))?
}

fn ensure_parent(file: &Path) -> Result<(), StoreError> {
    let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.exists() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(parent)
        .map_err(|e| StoreError::with_source("could not create the token directory", e))
}

fn owner_only(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

fn open_lock_file(path: &Path) -> Result<File, StoreError> {
    owner_only(OpenOptions::new().read(true).write(true).create(true))
        .truncate(false)
        .open(path)
        .map_err(|e| StoreError::with_source("could not open the token lock file", e))
}

fn read_document(path: &Path) -> Result<Document, StoreError> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut file) => {
            file.read_to_end(&mut bytes)
                .map_err(|e| StoreError::with_source("could not read the token file", e))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Document::default()),
        Err(e) => return Err(StoreError::with_source("could not open the token file", e)),
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Document::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::with_source("the token file is not a token store", e))
}

fn write_document(path: &Path, doc: &Document) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(doc)
        .map_err(|e| StoreError::with_source("could not encode the token file", e))?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(
        ".tmp.{}.{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = PathBuf::from(tmp_name);
    let result = (|| {
        let mut file = owner_only(OpenOptions::new().write(true).create_new(true)).open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        #[cfg(unix)]
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Make the rename itself durable.
            File::open(parent)?.sync_all()?;
        }
        Ok::<(), io::Error>(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StoreError::with_source("could not write the token file", e)
    })
}

impl TokenStore for FileTokenStore {
    fn load_tokens<'a>(&'a self, key: &'a TokenKey) -> StoreFuture<'a, Option<StoredTokens>> {
        let key = key.clone();
        self.read(move |doc| {
            doc.tokens
                .into_iter()
                .find(|e| e.key == key)
                .map(|e| e.tokens)
        })
    }

    fn save_tokens<'a>(
        &'a self,
        key: &'a TokenKey,
        tokens: &'a StoredTokens,
    ) -> StoreFuture<'a, ()> {
        let key = key.clone();
        let tokens = tokens.clone();
        self.modify(move |doc| {
            doc.tokens.retain(|e| e.key != key);
            doc.tokens.push(TokenEntry { key, tokens });
        })
    }

    fn remove_tokens<'a>(&'a self, key: &'a TokenKey) -> StoreFuture<'a, ()> {
        let key = key.clone();
        self.modify(move |doc| doc.tokens.retain(|e| e.key != key))
    }

    fn load_client<'a>(&'a self, issuer: &'a str) -> StoreFuture<'a, Option<StoredClient>> {
        let issuer = issuer.to_owned();
        self.read(move |doc| doc.clients.into_iter().find(|c| c.issuer == issuer))
    }

    fn save_client<'a>(&'a self, client: &'a StoredClient) -> StoreFuture<'a, ()> {
        let client = client.clone();
        self.modify(move |doc| {
            doc.clients.retain(|c| c.issuer != client.issuer);
            doc.clients.push(client);
        })
    }

    fn remove_client<'a>(&'a self, issuer: &'a str) -> StoreFuture<'a, ()> {
        let issuer = issuer.to_owned();
        self.modify(move |doc| doc.clients.retain(|c| c.issuer != issuer))
    }

    fn lock<'a>(&'a self, _key: &'a TokenKey) -> StoreFuture<'a, StoreLock> {
        let paths = Arc::clone(&self.inner);
        Box::pin(async move {
            blocking(move || {
                ensure_parent(&paths.file)?;
                let file = open_lock_file(&paths.refresh_lock)?;
                file.lock()
                    .map_err(|e| StoreError::with_source("could not lock the token file", e))?;
                Ok(StoreLock::new(file))
            })
            .await
        })
    }
}
