//! The writer thread of [`SqliteStore`](super::SqliteStore): every write, committed in groups.
//!
//! SQLite has one writer at a time, so the store has one writing connection, owned by a thread
//! of its own and fed by a channel. The thread takes the first queued write, then everything
//! queued behind it (up to [`MAX_BATCH`]), and runs the lot in one `BEGIN IMMEDIATE`
//! transaction, each write in its own savepoint when there are several (a failing write rolls
//! back alone), with cached prepared statements. Each caller is answered through its own oneshot
//! channel once that transaction has committed, never before: N writes that arrive while one
//! commit is on its way to the disk share the next commit and its one `fsync`.
//!
//! Two kinds of write share the queue ([`Commit`]): durable ones commit with
//! `synchronous=FULL` (the store's [`Durability`](super::Durability)), light ones (codes,
//! browser flows, rate-limit windows, leases) with `synchronous=NORMAL`, without an `fsync` of
//! their own; the WAL is written in order, so the next durable commit makes them durable too. A
//! batch with at least one durable write commits as durable.
//!
//! A caller that goes away (a client that disconnected) does not cancel its write: it is
//! committed and its answer dropped, as before. A store dropped or closed ends the thread once the
//! queue is empty; the connection closes with it.

use std::sync::{Arc, Mutex, PoisonError, mpsc};

use rusqlite::Connection;
use tokio::sync::{oneshot, watch};

use super::StoreError;

/// The most writes one transaction takes.
const MAX_BATCH: usize = 64;

/// How a write commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Commit {
    /// At the store's durability (`synchronous=FULL` unless opened with `Durability::Normal`).
    Durable,
    /// Without an `fsync` of its own (`synchronous=NORMAL`).
    Light,
}

/// One queued write: run on the writer's connection, then answered with the commit's outcome.
trait Work: Send {
    fn commit(&self) -> Commit;
    /// Run the write; whether it succeeded (else its statements are rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answer the caller: its own result if the transaction committed, else `error`.
    fn answer(self: Box<Self>, committed: Result<(), &StoreError>);
}

struct Pending<T, F> {
    commit: Commit,
    write: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Work for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn commit(&self) -> Commit {
        self.commit
    }

    fn run(&mut self, conn: &Connection) -> bool {
        let result = match self.write.take() {
            Some(write) => write(conn),
            None => Err(StoreError::new("a database write ran twice")),
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, committed: Result<(), &StoreError>) {
        let answer = match (committed, self.result) {
            // A write that failed rolled back alone: its own error, whatever the others did.
            (_, Some(Err(e))) => Err(e),
            (Ok(()), Some(Ok(value))) => Ok(value),
            (Ok(()), None) => Err(StoreError::new("the database write did not run")),
            (Err(e), _) => Err(StoreError::new(e.to_string())),
        };
        let _ = self.reply.send(answer);
    }
}

/// The queue of the writer thread. Dropping the last clone (or [`close`](Self::close)) ends it.
#[derive(Debug)]
pub(super) struct Writer {
    queue: Mutex<Option<mpsc::Sender<Box<dyn Work>>>>,
    /// Turns `true` when the thread has ended and closed its connection.
    ended: watch::Receiver<bool>,
}

impl Writer {
    /// Start the writer thread: it opens (and migrates) its connection with `open`, then takes
    /// writes. `durable` is the `synchronous` setting of durable commits (`"FULL"` or
    /// `"NORMAL"`), the one `open` leaves the connection in. Returns once `open` has succeeded
    /// (or with its error), with the connection, shared for an in-memory database's reads.
    pub(super) async fn start<O>(
        open: O,
        durable: &'static str,
    ) -> Result<(Self, Arc<Mutex<Connection>>), StoreError>
    where
        O: FnOnce() -> Result<Connection, StoreError> + Send + 'static,
    {
        let (sender, receiver) = mpsc::channel::<Box<dyn Work>>();
        let (ended_tx, ended) = watch::channel(false);
        let (opened_tx, opened) = oneshot::channel();
        std::thread::Builder::new()
            .name("mcp-auth-sqlite-writer".to_owned())
            .spawn(move || {
                match open() {
                    Ok(conn) => {
                        let conn = Arc::new(Mutex::new(conn));
                        if opened_tx.send(Ok(conn.clone())).is_ok() {
                            write_loop(&conn, &receiver, durable);
                        }
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                    }
                }
                let _ = ended_tx.send(true);
            })
            .map_err(|e| StoreError::with_source("cannot start the SQLite writer thread", e))?;
        let conn = opened.await.unwrap_or_else(|_| {
            Err(StoreError::new(
                "the SQLite writer thread ended before opening the database",
            ))
        })?;
        Ok((
            Self {
                queue: Mutex::new(Some(sender)),
                ended,
            },
            conn,
        ))
    }

    /// Run `write` in the next group transaction and return its result once that transaction
    /// has committed. `write` returns `Err` to roll its own statements back (the others in the
    /// group commit); a failed commit fails every write of the group.
    pub(super) async fn run<T, F>(&self, commit: Commit, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Work> = Box::new(Pending {
            commit,
            write: Some(write),
            result: None,
            reply,
        });
        let sent = {
            let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.as_ref().is_some_and(|q| q.send(job).is_ok())
        };
        if !sent {
            return Err(closed());
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::new("the database write was abandoned")))
    }

    /// Stop taking writes, let the thread commit what is queued, and wait until it has closed
    /// its connection.
    pub(super) async fn close(&self) {
        drop(
            self.queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let mut ended = self.ended.clone();
        let _ = ended.wait_for(|ended| *ended).await;
    }
}

/// The error of a call on a closed store.
pub(super) fn closed() -> StoreError {
    StoreError::new("the SQLite store is closed")
}

fn write_loop(
    shared: &Mutex<Connection>,
    queue: &mpsc::Receiver<Box<dyn Work>>,
    durable: &'static str,
) {
    // What the connection's `synchronous` is now (it was opened with the durable setting).
    let mut synchronous = durable;
    while let Ok(first) = queue.recv() {
        // Uncontended but for an in-memory database's reads, which wait for the batch.
        let conn = shared.lock().unwrap_or_else(PoisonError::into_inner);
        let conn: &Connection = &conn;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let wanted = if batch.iter().any(|job| job.commit() == Commit::Durable) {
            durable
        } else {
            "NORMAL"
        };
        if wanted != synchronous {
            let set = if wanted == "FULL" {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            if let Err(e) = exec(conn, set) {
                let error = StoreError::with_source("cannot set the SQLite durability", e);
                fail_all(batch, &error);
                continue;
            }
            synchronous = wanted;
        }
        commit_batch(conn, batch);
    }
}

/// One statement without parameters, prepared once per connection.
fn exec(conn: &Connection, sql: &'static str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn commit_batch(conn: &Connection, batch: Vec<Box<dyn Work>>) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let error = StoreError::with_source("cannot start a transaction", e);
        fail_all(batch, &error);
        return;
    }
    // A lone write needs no savepoint: its failure rolls the transaction back.
    let savepoints = batch.len() > 1;
    let mut done: Vec<Box<dyn Work>> = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    while let Some(mut job) = jobs.next() {
        let ended = run_one(conn, job.as_mut(), savepoints);
        // SQLite rolls a transaction back by itself on some errors (disk full, I/O): nothing
        // that ran in it may be answered as committed, and nothing after it may run outside it.
        let ended = ended.and_then(|()| {
            if conn.is_autocommit() {
                Err(StoreError::new("the transaction was rolled back by SQLite"))
            } else {
                Ok(())
            }
        });
        if let Err(error) = ended {
            let _ = exec(conn, "ROLLBACK");
            done.push(job);
            done.extend(jobs);
            fail_all(done, &error);
            return;
        }
        done.push(job);
    }
    let committed =
        exec(conn, "COMMIT").map_err(|e| StoreError::with_source("cannot commit a transaction", e));
    if committed.is_err() && !conn.is_autocommit() {
        let _ = exec(conn, "ROLLBACK");
    }
    for job in done {
        job.answer(committed.as_ref().map(|_| ()));
    }
}

/// Run one write of the open transaction, in a savepoint if `savepoint`. `Err` when the
/// transaction is unusable; a write that failed by itself is rolled back and is `Ok`.
fn run_one(conn: &Connection, job: &mut dyn Work, savepoint: bool) -> Result<(), StoreError> {
    let unusable = |e| StoreError::with_source("cannot write to the database", e);
    if !savepoint {
        return if job.run(conn) {
            Ok(())
        } else {
            // Its own error is its answer; the (empty) transaction goes.
            Err(StoreError::new("the write failed"))
        };
    }
    exec(conn, "SAVEPOINT w").map_err(unusable)?;
    if !job.run(conn) {
        exec(conn, "ROLLBACK TO w").map_err(unusable)?;
    }
    exec(conn, "RELEASE w").map_err(unusable)
}

/// Answer every job of a batch that could not commit with `error` (a job that failed by itself
/// keeps its own error).
fn fail_all(batch: Vec<Box<dyn Work>>, error: &StoreError) {
    for job in batch {
        job.answer(Err(error));
    }
}
