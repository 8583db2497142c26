//! [`TempDb`]: a SQLite database file for one test. Included by `common/mod.rs` and, by path, by
//! `store.rs` (which does not take the rest of the common harness).

#![allow(unreachable_pub, dead_code)]

use std::{
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
};

/// A SQLite database file in the temporary directory, named after the test, this process and a
/// counter (a test may make several); removed with its `-wal` and `-shm` files when made (left
/// over by a crashed run) and when dropped.
pub struct TempDb(pub PathBuf);

impl TempDb {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let file = format!("mcp-auth-{name}-{}-{n}.db", std::process::id());
        let db = Self(std::env::temp_dir().join(file));
        db.remove();
        db
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = self.0.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}
