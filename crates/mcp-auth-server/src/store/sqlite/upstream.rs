//! The vault's records: encrypted upstream tokens and the leases on their refresh.

use super::*;

pub(super) fn put_upstream_tokens<'s>(
    store: &'s SqliteStore,
    record: UpstreamTokenRecord,
) -> StoreFuture<'s, ()> {
    Box::pin(store.write(Commit::Durable, move |conn| {
        execute(
            conn,
            concat!(
                "INSERT OR REPLACE INTO upstream_tokens (",
                upstream_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL)"
            ),
            params![
                record.subject,
                record.upstream,
                record.key_id,
                record.nonce,
                record.ciphertext,
                to_db(record.updated_at),
            ],
            "cannot store upstream tokens",
        )?;
        Ok(())
    }))
}

pub(super) fn get_upstream_tokens<'a>(
    store: &'a SqliteStore,
    subject: &'a str,
    upstream: &'a str,
) -> StoreFuture<'a, Option<UpstreamTokenRecord>> {
    Box::pin(async move {
        store.read(|conn| {
            query_one(
                conn,
                concat!(
                    "SELECT ",
                    upstream_columns!(),
                    " FROM upstream_tokens WHERE subject = ?1 AND upstream = ?2"
                ),
                [subject, upstream],
                "cannot read upstream tokens",
                |row| upstream_from_row(row),
            )
        })
    })
}

pub(super) fn delete_upstream_tokens<'a>(
    store: &'a SqliteStore,
    subject: &'a str,
) -> StoreFuture<'a, u64> {
    let subject = subject.to_owned();
    Box::pin(store.write(Commit::Durable, move |conn| {
        execute(
            conn,
            "DELETE FROM upstream_tokens WHERE subject = ?1",
            [subject],
            "cannot delete upstream tokens",
        )
        .map(count)
    }))
}

pub(super) fn lease_upstream_refresh<'a>(
    store: &'a SqliteStore,
    subject: &'a str,
    upstream: &'a str,
    lease: RefreshLease,
    now: u64,
) -> StoreFuture<'a, LeaseTake> {
    let (subject, upstream) = (subject.to_owned(), upstream.to_owned());
    Box::pin(store.write(Commit::Durable, move |conn| {
        // One statement under the write lock: one caller at a time takes a free (or ended)
        // lease.
        let taken = query_all(
            conn,
            concat!(
                "UPDATE upstream_tokens SET lease_holder = ?3, lease_until = ?4 \
                 WHERE subject = ?1 AND upstream = ?2 \
                 AND (lease_holder IS NULL OR lease_until IS NULL OR lease_until <= ?5) \
                 RETURNING ",
                upstream_columns!()
            ),
            params![
                subject,
                upstream,
                lease.holder,
                to_db(lease.until),
                to_db(now)
            ],
            "cannot lease an upstream refresh",
            |row| upstream_from_row(row),
        )?;
        if let Some(record) = taken.into_iter().next() {
            return Ok(LeaseTake::Granted(record));
        }
        let until = query_one(
            conn,
            "SELECT lease_until FROM upstream_tokens WHERE subject = ?1 AND upstream = ?2",
            [&subject, &upstream],
            "cannot read upstream tokens",
            |row| row.opt_time("lease_until"),
        )?;
        Ok(match until {
            None => LeaseTake::Missing,
            Some(until) => LeaseTake::Busy {
                until: until.unwrap_or(0),
            },
        })
    }))
}

pub(super) fn finish_upstream_refresh<'a>(
    store: &'a SqliteStore,
    record: UpstreamTokenRecord,
    holder: &'a str,
) -> StoreFuture<'a, bool> {
    let holder = holder.to_owned();
    Box::pin(store.write(Commit::Durable, move |conn| {
        let done = execute(
            conn,
            "UPDATE upstream_tokens SET key_id = ?3, nonce = ?4, ciphertext = ?5, \
             updated_at = ?6, lease_holder = NULL, lease_until = NULL \
             WHERE subject = ?1 AND upstream = ?2 AND lease_holder = ?7",
            params![
                record.subject,
                record.upstream,
                record.key_id,
                record.nonce,
                record.ciphertext,
                to_db(record.updated_at),
                holder,
            ],
            "cannot store refreshed upstream tokens",
        )?;
        Ok(done > 0)
    }))
}

pub(super) fn release_upstream_refresh<'a>(
    store: &'a SqliteStore,
    subject: &'a str,
    upstream: &'a str,
    holder: &'a str,
) -> StoreFuture<'a, ()> {
    let args = [subject.to_owned(), upstream.to_owned(), holder.to_owned()];
    Box::pin(store.write(Commit::Durable, move |conn| {
        execute(
            conn,
            "UPDATE upstream_tokens SET lease_holder = NULL, lease_until = NULL \
             WHERE subject = ?1 AND upstream = ?2 AND lease_holder = ?3",
            args,
            "cannot release an upstream refresh",
        )?;
        Ok(())
    }))
}
