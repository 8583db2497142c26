//! What the SQL backends share: how records map to columns (times as signed 64-bit integers,
//! hashes as 32-byte blobs, client metadata as JSON text, enums by their names) and the
//! row → record conversions, written once over [`Columns`], which each backend implements for
//! its row type.

use mcp_auth_core::metadata::ClientMetadata;

use super::{
    ClientAuthMethod, ClientRecord, ClientSource, CodeRecord, ConsentRecord, FlowKind, FlowRecord,
    GrantRecord, RefreshLease, RefreshRecord, RefreshState, StoreError, StoredKey, TokenHash,
    UpstreamTokenRecord, Window,
};

/// Wrap a driver error (sqlx, rusqlite) with what was being done.
pub(super) fn db_error<E>(context: &'static str) -> impl FnOnce(E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| StoreError::with_source(context, e)
}

/// UNIX seconds to a signed 64-bit column: saturate instead of wrapping, so that comparisons
/// in SQL stay right.
pub(super) fn to_db(time: u64) -> i64 {
    i64::try_from(time).unwrap_or(i64::MAX)
}

/// A stored time back to UNIX seconds (a negative value, which no backend writes, reads as 0).
pub(super) fn from_db(time: i64) -> u64 {
    u64::try_from(time).unwrap_or(0)
}

pub(super) fn window_from(count: i64, ends_at: i64) -> Window {
    Window {
        count: u32::try_from(count).unwrap_or(u32::MAX),
        ends_at: from_db(ends_at),
    }
}

pub(super) fn serialize_client(client: &ClientRecord) -> Result<(String, String), StoreError> {
    let metadata = serde_json::to_string(&client.metadata)
        .map_err(|e| StoreError::with_source("cannot serialize client metadata", e))?;
    let resources = serde_json::to_string(&client.resources)
        .map_err(|e| StoreError::with_source("cannot serialize client resources", e))?;
    Ok((metadata, resources))
}

/// Typed access to a row's columns by name.
pub(super) trait Columns {
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError>;
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;

    fn time(&self, column: &str) -> Result<u64, StoreError> {
        self.int(column).map(from_db)
    }

    fn opt_time(&self, column: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.opt_int(column)?.map(from_db))
    }

    fn hash(&self, column: &str) -> Result<TokenHash, StoreError> {
        hash_from_bytes(&self.bytes(column)?)
    }

    fn opt_hash(&self, column: &str) -> Result<Option<TokenHash>, StoreError> {
        self.opt_bytes(column)?
            .map(|b| hash_from_bytes(&b))
            .transpose()
    }
}

/// Implements [`Columns`] for a sqlx row type.
#[cfg(feature = "postgres")]
macro_rules! impl_columns {
    ($row:ty) => {
        impl $crate::store::sql::Columns for $row {
            fn int(&self, column: &str) -> Result<i64, $crate::store::StoreError> {
                sqlx::Row::try_get(self, column)
                    .map_err($crate::store::sql::db_error("cannot read a stored number"))
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, $crate::store::StoreError> {
                sqlx::Row::try_get(self, column)
                    .map_err($crate::store::sql::db_error("cannot read a stored number"))
            }
            fn text(&self, column: &str) -> Result<String, $crate::store::StoreError> {
                sqlx::Row::try_get(self, column)
                    .map_err($crate::store::sql::db_error("cannot read a stored text"))
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, $crate::store::StoreError> {
                sqlx::Row::try_get(self, column)
                    .map_err($crate::store::sql::db_error("cannot read a stored text"))
            }
            fn bytes(&self, column: &str) -> Result<Vec<u8>, $crate::store::StoreError> {
                sqlx::Row::try_get(self, column)
                    .map_err($crate::store::sql::db_error("cannot read stored bytes"))
            }
            fn opt_bytes(
                &self,
                column: &str,
            ) -> Result<Option<Vec<u8>>, $crate::store::StoreError> {
                sqlx::Row::try_get(self, column)
                    .map_err($crate::store::sql::db_error("cannot read stored bytes"))
            }
            fn flag(&self, column: &str) -> Result<bool, $crate::store::StoreError> {
                sqlx::Row::try_get(self, column)
                    .map_err($crate::store::sql::db_error("cannot read a stored flag"))
            }
        }
    };
}
#[cfg(feature = "postgres")]
pub(super) use impl_columns;

fn hash_from_bytes(bytes: &[u8]) -> Result<TokenHash, StoreError> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::new("a stored hash is not 32 bytes long"))?;
    Ok(TokenHash::from_bytes(bytes))
}

// ----- column lists and row → record conversions -----

macro_rules! client_columns {
    () => {
        "client_id, secret_hash, secret_expires_at, auth_method, metadata, issued_at, source, \
         machine_scope, resources, last_authorized_at"
    };
}
pub(super) use client_columns;

pub(super) fn client_from_row(row: &impl Columns) -> Result<ClientRecord, StoreError> {
    let auth_method = ClientAuthMethod::from_name(&row.text("auth_method")?)
        .ok_or_else(|| StoreError::new("a stored client has an unknown auth method"))?;
    let metadata: ClientMetadata = serde_json::from_str(&row.text("metadata")?)
        .map_err(|e| StoreError::with_source("a stored client has invalid metadata", e))?;
    let resources: Vec<String> = serde_json::from_str(&row.text("resources")?)
        .map_err(|e| StoreError::with_source("a stored client has invalid resources", e))?;
    let source = ClientSource::from_name(&row.text("source")?)
        .ok_or_else(|| StoreError::new("a stored client has an unknown source"))?;
    Ok(ClientRecord {
        client_id: row.text("client_id")?,
        secret_hash: row.opt_hash("secret_hash")?,
        secret_expires_at: row.time("secret_expires_at")?,
        auth_method,
        metadata,
        issued_at: row.time("issued_at")?,
        source,
        machine_scope: row.opt_text("machine_scope")?,
        resources,
        last_authorized_at: row.opt_time("last_authorized_at")?,
    })
}

macro_rules! code_columns {
    () => {
        "hash, client_id, redirect_uri, redirect_uri_in_request, code_challenge, resource, scope, \
         subject, grant_id, issued_at, expires_at"
    };
}
pub(super) use code_columns;

pub(super) fn code_from_row(row: &impl Columns) -> Result<CodeRecord, StoreError> {
    Ok(CodeRecord {
        hash: row.hash("hash")?,
        client_id: row.text("client_id")?,
        redirect_uri: row.text("redirect_uri")?,
        redirect_uri_in_request: row.flag("redirect_uri_in_request")?,
        code_challenge: row.text("code_challenge")?,
        resource: row.text("resource")?,
        scope: row.text("scope")?,
        subject: row.text("subject")?,
        grant_id: row.text("grant_id")?,
        issued_at: row.time("issued_at")?,
        expires_at: row.time("expires_at")?,
    })
}

/// Grant columns of `grants g`, prefixed `g_` where a join would make them ambiguous.
macro_rules! grant_columns {
    () => {
        "g.grant_id AS g_grant_id, g.client_id AS g_client_id, g.subject AS g_subject, \
         g.scope AS g_scope, g.resource AS g_resource, g.created_at AS g_created_at, \
         g.expires_at AS g_expires_at, g.revoked_at AS g_revoked_at"
    };
}
pub(super) use grant_columns;

pub(super) fn grant_from_row(row: &impl Columns) -> Result<GrantRecord, StoreError> {
    Ok(GrantRecord {
        grant_id: row.text("g_grant_id")?,
        client_id: row.text("g_client_id")?,
        subject: row.text("g_subject")?,
        scope: row.text("g_scope")?,
        resource: row.text("g_resource")?,
        created_at: row.time("g_created_at")?,
        expires_at: row.time("g_expires_at")?,
        revoked_at: row.opt_time("g_revoked_at")?,
    })
}

/// Refresh-token columns of `refresh_tokens r`, prefixed `r_`.
macro_rules! refresh_columns {
    () => {
        "r.hash AS r_hash, r.grant_id AS r_grant_id, r.scope AS r_scope, \
         r.issued_at AS r_issued_at, r.expires_at AS r_expires_at, r.state AS r_state, \
         r.parent AS r_parent, r.rotated_at AS r_rotated_at, r.dpop_jkt AS r_dpop_jkt"
    };
}
pub(super) use refresh_columns;

pub(super) fn state_from_name(name: &str) -> Result<RefreshState, StoreError> {
    RefreshState::from_name(name)
        .ok_or_else(|| StoreError::new("a stored refresh token has an unknown state"))
}

pub(super) fn refresh_from_row(row: &impl Columns) -> Result<RefreshRecord, StoreError> {
    Ok(RefreshRecord {
        hash: row.hash("r_hash")?,
        grant_id: row.text("r_grant_id")?,
        scope: row.text("r_scope")?,
        issued_at: row.time("r_issued_at")?,
        expires_at: row.time("r_expires_at")?,
        state: state_from_name(&row.text("r_state")?)?,
        parent: row.opt_hash("r_parent")?,
        rotated_at: row.opt_time("r_rotated_at")?,
        dpop_jkt: row.opt_text("r_dpop_jkt")?,
    })
}

pub(super) fn consent_from_row(row: &impl Columns) -> Result<ConsentRecord, StoreError> {
    Ok(ConsentRecord {
        subject: row.text("subject")?,
        client_id: row.text("client_id")?,
        resource: row.text("resource")?,
        scope: row.text("scope")?,
        updated_at: row.time("updated_at")?,
    })
}

pub(super) fn key_from_row(row: &impl Columns) -> Result<StoredKey, StoreError> {
    Ok(StoredKey {
        kid: row.text("kid")?,
        alg: row.text("alg")?,
        pkcs8: zeroize::Zeroizing::new(row.bytes("pkcs8")?),
        created_at: row.time("created_at")?,
        activates_at: row.time("activates_at")?,
        retired_at: row.opt_time("retired_at")?,
    })
}

macro_rules! upstream_columns {
    () => {
        "subject, upstream, key_id, nonce, ciphertext, updated_at, lease_holder, lease_until"
    };
}
pub(super) use upstream_columns;

pub(super) fn upstream_from_row(row: &impl Columns) -> Result<UpstreamTokenRecord, StoreError> {
    let until = row.opt_time("lease_until")?;
    Ok(UpstreamTokenRecord {
        subject: row.text("subject")?,
        upstream: row.text("upstream")?,
        key_id: row.text("key_id")?,
        nonce: row.bytes("nonce")?,
        ciphertext: row.bytes("ciphertext")?,
        updated_at: row.time("updated_at")?,
        refresh_lease: row.opt_text("lease_holder")?.map(|holder| RefreshLease {
            holder,
            until: until.unwrap_or(0),
        }),
    })
}

pub(super) fn flow_from_row(row: &impl Columns) -> Result<FlowRecord, StoreError> {
    Ok(FlowRecord {
        kind: FlowKind::from_name(&row.text("kind")?)
            .ok_or_else(|| StoreError::new("unknown flow kind in the database"))?,
        key: row.hash("key")?,
        subject: row.opt_text("subject")?,
        value: row.bytes("value")?,
        expires_at: row.time("expires_at")?,
    })
}

/// The [`Store`](super::Store) methods both SQL backends forward alike to the functions of their
/// own `upstream` and `flows` modules (same names, same signatures): invoked inside each
/// backend's `impl Store`, where `super::upstream` and `super::flows` are that backend's.
macro_rules! forward_to_backend_modules {
    () => {
        fn put_upstream_tokens(&self, record: UpstreamTokenRecord) -> StoreFuture<'_, ()> {
            super::upstream::put_upstream_tokens(self, record)
        }

        fn get_upstream_tokens<'a>(
            &'a self,
            subject: &'a str,
            upstream: &'a str,
        ) -> StoreFuture<'a, Option<UpstreamTokenRecord>> {
            super::upstream::get_upstream_tokens(self, subject, upstream)
        }

        fn delete_upstream_tokens<'a>(&'a self, subject: &'a str) -> StoreFuture<'a, u64> {
            super::upstream::delete_upstream_tokens(self, subject)
        }

        fn lease_upstream_refresh<'a>(
            &'a self,
            subject: &'a str,
            upstream: &'a str,
            lease: RefreshLease,
            now: u64,
        ) -> StoreFuture<'a, LeaseTake> {
            super::upstream::lease_upstream_refresh(self, subject, upstream, lease, now)
        }

        fn finish_upstream_refresh<'a>(
            &'a self,
            record: UpstreamTokenRecord,
            holder: &'a str,
        ) -> StoreFuture<'a, bool> {
            super::upstream::finish_upstream_refresh(self, record, holder)
        }

        fn release_upstream_refresh<'a>(
            &'a self,
            subject: &'a str,
            upstream: &'a str,
            holder: &'a str,
        ) -> StoreFuture<'a, ()> {
            super::upstream::release_upstream_refresh(self, subject, upstream, holder)
        }

        fn put_flow(&self, record: FlowRecord, _now: u64) -> StoreFuture<'_, ()> {
            super::flows::put_flow(self, record)
        }

        fn get_flow<'a>(
            &'a self,
            kind: FlowKind,
            key: &'a TokenHash,
            now: u64,
        ) -> StoreFuture<'a, Option<FlowRecord>> {
            super::flows::get_flow(self, kind, key, now)
        }

        fn take_flow<'a>(
            &'a self,
            kind: FlowKind,
            key: &'a TokenHash,
            now: u64,
        ) -> StoreFuture<'a, Option<FlowRecord>> {
            super::flows::take_flow(self, kind, key, now)
        }

        fn delete_flows_of<'a>(&'a self, kind: FlowKind, subject: &'a str) -> StoreFuture<'a, u64> {
            super::flows::delete_flows_of(self, kind, subject)
        }

        fn count_event<'a>(
            &'a self,
            key: &'a str,
            window: u64,
            now: u64,
        ) -> StoreFuture<'a, Window> {
            super::flows::count_event(self, key, window, now)
        }

        fn get_window<'a>(&'a self, key: &'a str, now: u64) -> StoreFuture<'a, Option<Window>> {
            super::flows::get_window(self, key, now)
        }

        fn clear_window<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
            super::flows::clear_window(self, key)
        }

        fn try_lease<'a>(
            &'a self,
            name: &'a str,
            holder: &'a str,
            until: u64,
            now: u64,
        ) -> StoreFuture<'a, bool> {
            super::flows::try_lease(self, name, holder, until, now)
        }

        fn release_lease<'a>(&'a self, name: &'a str, holder: &'a str) -> StoreFuture<'a, ()> {
            super::flows::release_lease(self, name, holder)
        }

        fn purge_expired(&self, now: u64) -> StoreFuture<'_, u64> {
            super::flows::purge_expired(self, now)
        }
    };
}
pub(super) use forward_to_backend_modules;
