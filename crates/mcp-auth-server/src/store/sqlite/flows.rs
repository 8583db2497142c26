//! Short-lived records: browser flows, rate-limit windows, leases, and the purge of what expired.

use super::*;

pub(super) fn put_flow<'s>(store: &'s SqliteStore, record: FlowRecord) -> StoreFuture<'s, ()> {
    Box::pin(store.write(Commit::Light, move |conn| {
        execute(
            conn,
            "INSERT OR REPLACE INTO flows (kind, key, subject, value, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                record.kind.as_str(),
                blob(&record.key),
                record.subject,
                record.value,
                to_db(record.expires_at),
            ],
            "cannot store a browser flow",
        )?;
        Ok(())
    }))
}

pub(super) fn get_flow<'a>(
    store: &'a SqliteStore,
    kind: FlowKind,
    key: &'a TokenHash,
    now: u64,
) -> StoreFuture<'a, Option<FlowRecord>> {
    Box::pin(async move {
        store.read(|conn| {
            query_one(
                conn,
                "SELECT kind, key, subject, value, expires_at FROM flows \
                 WHERE kind = ?1 AND key = ?2 AND expires_at > ?3",
                params![kind.as_str(), blob(key), to_db(now)],
                "cannot read a browser flow",
                |row| flow_from_row(row),
            )
        })
    })
}

pub(super) fn take_flow<'a>(
    store: &'a SqliteStore,
    kind: FlowKind,
    key: &'a TokenHash,
    now: u64,
) -> StoreFuture<'a, Option<FlowRecord>> {
    let key = *key;
    Box::pin(store.write(Commit::Light, move |conn| {
        let taken = query_all(
            conn,
            "DELETE FROM flows WHERE kind = ?1 AND key = ?2 \
             RETURNING kind, key, subject, value, expires_at",
            params![kind.as_str(), blob(&key)],
            "cannot take a browser flow",
            |row| flow_from_row(row),
        )?;
        Ok(taken.into_iter().next().filter(|r| r.expires_at > now))
    }))
}

pub(super) fn delete_flows_of<'a>(
    store: &'a SqliteStore,
    kind: FlowKind,
    subject: &'a str,
) -> StoreFuture<'a, u64> {
    let subject = subject.to_owned();
    Box::pin(store.write(Commit::Light, move |conn| {
        execute(
            conn,
            "DELETE FROM flows WHERE kind = ?1 AND subject = ?2",
            params![kind.as_str(), subject],
            "cannot end browser flows",
        )
        .map(count)
    }))
}

pub(super) fn count_event<'a>(
    store: &'a SqliteStore,
    key: &'a str,
    window: u64,
    now: u64,
) -> StoreFuture<'a, Window> {
    let key = key.to_owned();
    Box::pin(store.write(Commit::Light, move |conn| {
        let counted = query_all(
            conn,
            "INSERT INTO rate_windows (key, count, ends_at) VALUES (?1, 1, ?3) \
             ON CONFLICT (key) DO UPDATE SET \
               count = CASE WHEN ends_at <= ?2 THEN 1 ELSE count + 1 END, \
               ends_at = CASE WHEN ends_at <= ?2 THEN ?3 ELSE ends_at END \
             RETURNING count, ends_at",
            params![key, to_db(now), to_db(now.saturating_add(window))],
            "cannot count a rate-limited event",
            |row| Ok(window_from(row.int("count")?, row.int("ends_at")?)),
        )?;
        counted
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::new("counting a rate-limited event returned no row"))
    }))
}

pub(super) fn get_window<'a>(
    store: &'a SqliteStore,
    key: &'a str,
    now: u64,
) -> StoreFuture<'a, Option<Window>> {
    Box::pin(async move {
        store.read(|conn| {
            query_one(
                conn,
                "SELECT count, ends_at FROM rate_windows WHERE key = ?1 AND ends_at > ?2",
                params![key, to_db(now)],
                "cannot read a rate-limit window",
                |row| Ok(window_from(row.int("count")?, row.int("ends_at")?)),
            )
        })
    })
}

pub(super) fn clear_window<'a>(store: &'a SqliteStore, key: &'a str) -> StoreFuture<'a, ()> {
    let key = key.to_owned();
    Box::pin(store.write(Commit::Light, move |conn| {
        execute(
            conn,
            "DELETE FROM rate_windows WHERE key = ?1",
            [key],
            "cannot clear a rate-limit window",
        )?;
        Ok(())
    }))
}

pub(super) fn try_lease<'a>(
    store: &'a SqliteStore,
    name: &'a str,
    holder: &'a str,
    until: u64,
    now: u64,
) -> StoreFuture<'a, bool> {
    let (name, holder) = (name.to_owned(), holder.to_owned());
    Box::pin(store.write(Commit::Light, move |conn| {
        let done = execute(
            conn,
            "INSERT INTO leases (name, holder, until) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE leases.holder = excluded.holder OR leases.until <= ?4",
            params![name, holder, to_db(until), to_db(now)],
            "cannot take a lease",
        )?;
        Ok(done == 1)
    }))
}

pub(super) fn release_lease<'a>(
    store: &'a SqliteStore,
    name: &'a str,
    holder: &'a str,
) -> StoreFuture<'a, ()> {
    let args = [name.to_owned(), holder.to_owned()];
    Box::pin(store.write(Commit::Light, move |conn| {
        execute(
            conn,
            "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
            args,
            "cannot release a lease",
        )?;
        Ok(())
    }))
}

pub(super) fn purge_expired<'s>(store: &'s SqliteStore, now: u64) -> StoreFuture<'s, u64> {
    Box::pin(store.write(Commit::Durable, move |conn| purge(conn, now)))
}
