//! The vault's records: encrypted upstream tokens and the leases on their refresh.

use super::*;

pub(super) fn put_upstream_tokens<'s>(
    store: &'s PostgresStore,
    record: UpstreamTokenRecord,
) -> StoreFuture<'s, ()> {
    Box::pin(async move {
        // Replacing ends any lease.
        sqlx::query(concat!(
            "INSERT INTO upstream_tokens (",
            upstream_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL) \
             ON CONFLICT (subject, upstream) DO UPDATE SET key_id = EXCLUDED.key_id, \
               nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext, \
               updated_at = EXCLUDED.updated_at, lease_holder = NULL, lease_until = NULL"
        ))
        .bind(record.subject.as_str())
        .bind(record.upstream.as_str())
        .bind(record.key_id.as_str())
        .bind(record.nonce.as_slice())
        .bind(record.ciphertext.as_slice())
        .bind(to_db(record.updated_at))
        .execute(&store.pool)
        .await
        .map_err(db_error("cannot store upstream tokens"))?;
        Ok(())
    })
}

pub(super) fn get_upstream_tokens<'a>(
    store: &'a PostgresStore,
    subject: &'a str,
    upstream: &'a str,
) -> StoreFuture<'a, Option<UpstreamTokenRecord>> {
    if has_nul(&[subject, upstream]) {
        return ready(None);
    }
    Box::pin(async move {
        let row = sqlx::query(concat!(
            "SELECT ",
            upstream_columns!(),
            " FROM upstream_tokens WHERE subject = $1 AND upstream = $2"
        ))
        .bind(subject)
        .bind(upstream)
        .fetch_optional(&store.pool)
        .await
        .map_err(db_error("cannot read upstream tokens"))?;
        row.as_ref().map(upstream_from_row).transpose()
    })
}

pub(super) fn delete_upstream_tokens<'a>(
    store: &'a PostgresStore,
    subject: &'a str,
) -> StoreFuture<'a, u64> {
    if has_nul(&[subject]) {
        return ready(0);
    }
    Box::pin(async move {
        let done = sqlx::query("DELETE FROM upstream_tokens WHERE subject = $1")
            .bind(subject)
            .execute(&store.pool)
            .await
            .map_err(db_error("cannot delete upstream tokens"))?;
        Ok(done.rows_affected())
    })
}

pub(super) fn lease_upstream_refresh<'a>(
    store: &'a PostgresStore,
    subject: &'a str,
    upstream: &'a str,
    lease: RefreshLease,
    now: u64,
) -> StoreFuture<'a, LeaseTake> {
    if has_nul(&[subject, upstream]) {
        return ready(LeaseTake::Missing);
    }
    Box::pin(async move {
        // One statement: concurrent callers queue on the row's lock and re-check the
        // lease as the one before left it, so one at a time takes a free (or ended) lease.
        let taken = sqlx::query(concat!(
            "UPDATE upstream_tokens SET lease_holder = $3, lease_until = $4 \
             WHERE subject = $1 AND upstream = $2 \
             AND (lease_holder IS NULL OR lease_until IS NULL OR lease_until <= $5) \
             RETURNING ",
            upstream_columns!()
        ))
        .bind(subject)
        .bind(upstream)
        .bind(lease.holder.as_str())
        .bind(to_db(lease.until))
        .bind(to_db(now))
        .fetch_optional(&store.pool)
        .await
        .map_err(db_error("cannot lease an upstream refresh"))?;
        if let Some(row) = taken {
            return Ok(LeaseTake::Granted(upstream_from_row(&row)?));
        }
        let until: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT lease_until FROM upstream_tokens WHERE subject = $1 AND upstream = $2",
        )
        .bind(subject)
        .bind(upstream)
        .fetch_optional(&store.pool)
        .await
        .map_err(db_error("cannot read upstream tokens"))?;
        Ok(match until {
            None => LeaseTake::Missing,
            Some(until) => LeaseTake::Busy {
                until: until.map_or(0, from_db),
            },
        })
    })
}

pub(super) fn finish_upstream_refresh<'a>(
    store: &'a PostgresStore,
    record: UpstreamTokenRecord,
    holder: &'a str,
) -> StoreFuture<'a, bool> {
    if has_nul(&[&record.subject, &record.upstream, holder]) {
        return ready(false);
    }
    Box::pin(async move {
        let done = sqlx::query(
            "UPDATE upstream_tokens SET key_id = $3, nonce = $4, ciphertext = $5, \
             updated_at = $6, lease_holder = NULL, lease_until = NULL \
             WHERE subject = $1 AND upstream = $2 AND lease_holder = $7",
        )
        .bind(record.subject.as_str())
        .bind(record.upstream.as_str())
        .bind(record.key_id.as_str())
        .bind(record.nonce.as_slice())
        .bind(record.ciphertext.as_slice())
        .bind(to_db(record.updated_at))
        .bind(holder)
        .execute(&store.pool)
        .await
        .map_err(db_error("cannot store refreshed upstream tokens"))?;
        Ok(done.rows_affected() > 0)
    })
}

pub(super) fn release_upstream_refresh<'a>(
    store: &'a PostgresStore,
    subject: &'a str,
    upstream: &'a str,
    holder: &'a str,
) -> StoreFuture<'a, ()> {
    if has_nul(&[subject, upstream, holder]) {
        return ready(());
    }
    Box::pin(async move {
        sqlx::query(
            "UPDATE upstream_tokens SET lease_holder = NULL, lease_until = NULL \
             WHERE subject = $1 AND upstream = $2 AND lease_holder = $3",
        )
        .bind(subject)
        .bind(upstream)
        .bind(holder)
        .execute(&store.pool)
        .await
        .map_err(db_error("cannot release an upstream refresh"))?;
        Ok(())
    })
}
