//! Short-lived records: browser flows, rate-limit windows, leases, and the purge of what expired.

use super::*;

pub(super) fn put_flow<'s>(store: &'s PostgresStore, record: FlowRecord) -> StoreFuture<'s, ()> {
    Box::pin(async move {
        sqlx::query(
            "INSERT INTO flows (kind, key, subject, value, expires_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (kind, key) DO UPDATE SET subject = EXCLUDED.subject, \
               value = EXCLUDED.value, expires_at = EXCLUDED.expires_at",
        )
        .bind(record.kind.as_str())
        .bind(record.key.as_bytes().as_slice())
        .bind(record.subject.as_deref())
        .bind(record.value.as_slice())
        .bind(to_db(record.expires_at))
        .execute(&store.pool)
        .await
        .map_err(db_error("cannot store a browser flow"))?;
        Ok(())
    })
}

pub(super) fn get_flow<'a>(
    store: &'a PostgresStore,
    kind: FlowKind,
    key: &'a TokenHash,
    now: u64,
) -> StoreFuture<'a, Option<FlowRecord>> {
    Box::pin(async move {
        let row = sqlx::query(
            "SELECT kind, key, subject, value, expires_at FROM flows \
             WHERE kind = $1 AND key = $2 AND expires_at > $3",
        )
        .bind(kind.as_str())
        .bind(key.as_bytes().as_slice())
        .bind(to_db(now))
        .fetch_optional(&store.pool)
        .await
        .map_err(db_error("cannot read a browser flow"))?;
        row.as_ref().map(flow_from_row).transpose()
    })
}

pub(super) fn take_flow<'a>(
    store: &'a PostgresStore,
    kind: FlowKind,
    key: &'a TokenHash,
    now: u64,
) -> StoreFuture<'a, Option<FlowRecord>> {
    Box::pin(async move {
        // One statement: of concurrent callers, the one whose DELETE removed the row gets it.
        let row = sqlx::query(
            "DELETE FROM flows WHERE kind = $1 AND key = $2 \
             RETURNING kind, key, subject, value, expires_at",
        )
        .bind(kind.as_str())
        .bind(key.as_bytes().as_slice())
        .fetch_optional(&store.pool)
        .await
        .map_err(db_error("cannot take a browser flow"))?;
        let record = row.as_ref().map(flow_from_row).transpose()?;
        Ok(record.filter(|r| r.expires_at > now))
    })
}

pub(super) fn delete_flows_of<'a>(
    store: &'a PostgresStore,
    kind: FlowKind,
    subject: &'a str,
) -> StoreFuture<'a, u64> {
    if has_nul(&[subject]) {
        return ready(0);
    }
    Box::pin(async move {
        let done = sqlx::query("DELETE FROM flows WHERE kind = $1 AND subject = $2")
            .bind(kind.as_str())
            .bind(subject)
            .execute(&store.pool)
            .await
            .map_err(db_error("cannot end browser flows"))?;
        Ok(done.rows_affected())
    })
}

pub(super) fn count_event<'a>(
    store: &'a PostgresStore,
    key: &'a str,
    window: u64,
    now: u64,
) -> StoreFuture<'a, Window> {
    Box::pin(async move {
        let (count, ends_at): (i64, i64) = sqlx::query_as(
            "INSERT INTO rate_windows (key, count, ends_at) VALUES ($1, 1, $3) \
             ON CONFLICT (key) DO UPDATE SET \
               count = CASE WHEN rate_windows.ends_at <= $2 THEN 1 \
                       ELSE rate_windows.count + 1 END, \
               ends_at = CASE WHEN rate_windows.ends_at <= $2 THEN $3 \
                         ELSE rate_windows.ends_at END \
             RETURNING count, ends_at",
        )
        .bind(key)
        .bind(to_db(now))
        .bind(to_db(now.saturating_add(window)))
        .fetch_one(&store.pool)
        .await
        .map_err(db_error("cannot count a rate-limited event"))?;
        Ok(window_from(count, ends_at))
    })
}

pub(super) fn get_window<'a>(
    store: &'a PostgresStore,
    key: &'a str,
    now: u64,
) -> StoreFuture<'a, Option<Window>> {
    if has_nul(&[key]) {
        return ready(None);
    }
    Box::pin(async move {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT count, ends_at FROM rate_windows WHERE key = $1 AND ends_at > $2",
        )
        .bind(key)
        .bind(to_db(now))
        .fetch_optional(&store.pool)
        .await
        .map_err(db_error("cannot read a rate-limit window"))?;
        Ok(row.map(|(count, ends_at)| window_from(count, ends_at)))
    })
}

pub(super) fn clear_window<'a>(store: &'a PostgresStore, key: &'a str) -> StoreFuture<'a, ()> {
    if has_nul(&[key]) {
        return ready(());
    }
    Box::pin(async move {
        sqlx::query("DELETE FROM rate_windows WHERE key = $1")
            .bind(key)
            .execute(&store.pool)
            .await
            .map_err(db_error("cannot clear a rate-limit window"))?;
        Ok(())
    })
}

pub(super) fn try_lease<'a>(
    store: &'a PostgresStore,
    name: &'a str,
    holder: &'a str,
    until: u64,
    now: u64,
) -> StoreFuture<'a, bool> {
    Box::pin(async move {
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until \
             WHERE leases.holder = EXCLUDED.holder OR leases.until <= $4",
        )
        .bind(name)
        .bind(holder)
        .bind(to_db(until))
        .bind(to_db(now))
        .execute(&store.pool)
        .await
        .map_err(db_error("cannot take a lease"))?;
        Ok(done.rows_affected() == 1)
    })
}

pub(super) fn release_lease<'a>(
    store: &'a PostgresStore,
    name: &'a str,
    holder: &'a str,
) -> StoreFuture<'a, ()> {
    if has_nul(&[name, holder]) {
        return ready(());
    }
    Box::pin(async move {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&store.pool)
            .await
            .map_err(db_error("cannot release a lease"))?;
        Ok(())
    })
}

pub(super) fn purge_expired<'s>(store: &'s PostgresStore, now: u64) -> StoreFuture<'s, u64> {
    Box::pin(store.purge(now))
}
