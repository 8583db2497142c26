//! Group commit for [`SqliteStore`](super::SqliteStore)'s durable writes.
//!
//! A durable commit costs one `fsync`, which on ordinary disks is most of a grant's CPU (kernel
//! time) and latency. Writes that arrive while one commit is on its way to the disk are run
//! together in the next transaction, each in its own savepoint (a failing write rolls back
//! alone), and answered once that transaction has committed: N concurrent grants share one
//! `fsync`. A lone write is committed at once, as before.
//!
//! There is no resident task: the caller that finds the queue idle spawns a drain task that
//! runs until the queue is empty, so a caller cancelled mid-way (a client that went away)
//! never leaves the others waiting, and a store outliving its runtime holds no task.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::sqlite::{SqliteConnection, SqlitePool};
use tokio::sync::oneshot;

use super::StoreError;

/// What a job reports once its transaction has committed (or failed).
type Done = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;
/// The future a job runs on the batch's connection: whether its statements succeeded (else its
/// savepoint is rolled back), and how to answer its caller.
type JobFuture<'c> = Pin<Box<dyn Future<Output = (bool, Done)> + Send + 'c>>;
/// One durable write; given no connection (the batch could not start), it only makes its
/// answer.
type Job = Box<dyn for<'c> FnOnce(Option<&'c mut SqliteConnection>) -> JobFuture<'c> + Send>;

/// The most writes one transaction takes.
const MAX_BATCH: usize = 64;

/// A queue of durable writes committed in groups.
#[derive(Clone)]
pub(super) struct GroupCommit {
    shared: Arc<Shared>,
}

struct Shared {
    pool: SqlitePool,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    /// Whether a drain task is running.
    draining: bool,
}

impl GroupCommit {
    pub(super) fn new(pool: SqlitePool) -> Self {
        Self {
            shared: Arc::new(Shared {
                pool,
                queue: Mutex::new(Queue::default()),
            }),
        }
    }

    /// Run `write` in the next group transaction and return its result once that transaction
    /// has committed. `write` returns `Err` to roll its own statements back (the others in the
    /// group commit); a failed commit fails every write of the group.
    pub(super) async fn run<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(
                &'c mut SqliteConnection,
            )
                -> Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'c>>
            + Send
            + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = match conn {
                    Some(conn) => write(conn).await,
                    None => Err(StoreError::new("the batch did not start")),
                };
                let ok = result.is_ok();
                let done: Done = Box::new(move |committed| {
                    let answer = match committed {
                        Ok(()) => result,
                        Err(e) => Err(StoreError::new(e.to_string())),
                    };
                    let _ = tx.send(answer);
                });
                (ok, done)
            })
        });
        let start = {
            let mut queue = self
                .shared
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            queue.jobs.push(job);
            !std::mem::replace(&mut queue.draining, true)
        };
        if start {
            let shared = self.shared.clone();
            tokio::spawn(drain(shared));
        }
        rx.await
            .unwrap_or_else(|_| Err(StoreError::new("the database write was abandoned")))
    }
}

/// Commit groups until the queue is empty.
async fn drain(shared: Arc<Shared>) {
    loop {
        let batch = {
            let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            if queue.jobs.is_empty() {
                queue.draining = false;
                return;
            }
            let take = queue.jobs.len().min(MAX_BATCH);
            queue.jobs.drain(..take).collect::<Vec<_>>()
        };
        commit_batch(&shared.pool, batch).await;
    }
}

/// One statement without parameters.
fn exec<'a>(
    conn: &'a mut SqliteConnection,
    sql: &'static str,
) -> Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'a>> {
    Box::pin(async move { sqlx::query(sql).execute(conn).await.map(|_| ()) })
}

async fn commit_batch(pool: &SqlitePool, batch: Vec<Job>) {
    let mut pooled = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => {
            let error = StoreError::with_source("cannot reach the SQLite database", e);
            fail_all(batch, &error).await;
            return;
        }
    };
    let conn: &mut SqliteConnection = pooled.as_mut();
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE").await {
        let error = StoreError::with_source("cannot start a transaction", e);
        fail_all(batch, &error).await;
        return;
    }
    let mut done = Vec::with_capacity(batch.len());
    for job in batch {
        if let Err(e) = exec(conn, "SAVEPOINT w").await {
            // The transaction is unusable: what ran so far goes with it.
            let error = StoreError::with_source("cannot write to the database", e);
            let _ = exec(conn, "ROLLBACK").await;
            for d in done {
                let d: Done = d;
                d(Err(&error));
            }
            return;
        }
        let (ok, answer) = job(Some(&mut *conn)).await;
        let mut ended = if ok {
            Ok(())
        } else {
            exec(conn, "ROLLBACK TO w").await
        };
        if ended.is_ok() {
            ended = exec(conn, "RELEASE w").await;
        }
        if let Err(e) = ended {
            let error = StoreError::with_source("cannot write to the database", e);
            let _ = exec(conn, "ROLLBACK").await;
            answer(Err(&error));
            for d in done {
                let d: Done = d;
                d(Err(&error));
            }
            return;
        }
        done.push(answer);
    }
    let committed = exec(conn, "COMMIT")
        .await
        .map(|_| ())
        .map_err(|e| StoreError::with_source("cannot commit a transaction", e));
    if committed.is_err() {
        let _ = exec(conn, "ROLLBACK").await;
    }
    for d in done {
        d(committed.as_ref().map(|_| ()));
    }
}

/// Answer every job of a batch that could not start with `error`.
async fn fail_all(batch: Vec<Job>, error: &StoreError) {
    for job in batch {
        let (_, answer) = job(None).await;
        answer(Err(error));
    }
}
