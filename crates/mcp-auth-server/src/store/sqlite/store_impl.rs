//! `impl Store for SqliteStore`: the trait's operations on this backend; the vault's records
//! are in [`upstream`](super::upstream), short-lived records in [`flows`](super::flows).

use super::*;

impl Store for SqliteStore {
    fn put_client(&self, client: ClientRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let (metadata, resources) = serialize_client(&client)?;
            self.write(Commit::Durable, move |conn| {
                execute(
                    conn,
                    "INSERT OR REPLACE INTO clients \
                     (client_id, secret_hash, secret_expires_at, auth_method, metadata, issued_at, \
                      source, machine_scope, resources, last_authorized_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        client.client_id,
                        client.secret_hash.as_ref().map(blob),
                        to_db(client.secret_expires_at),
                        client.auth_method.as_str(),
                        metadata,
                        to_db(client.issued_at),
                        client.source.as_str(),
                        client.machine_scope,
                        resources,
                        client.last_authorized_at.map(to_db),
                    ],
                    "cannot store a client",
                )?;
                Ok(())
            })
            .await
        })
    }

    fn client_authorized<'a>(&'a self, client_id: &'a str, now: u64) -> StoreFuture<'a, ()> {
        let client_id = client_id.to_owned();
        Box::pin(self.write(Commit::Light, move |conn| {
            execute(
                conn,
                "UPDATE clients SET last_authorized_at = ?2 WHERE client_id = ?1",
                params![client_id, to_db(now)],
                "cannot record a client's authorization",
            )?;
            Ok(())
        }))
    }

    fn purge_unused_public_clients(&self, unused_since: u64, now: u64) -> StoreFuture<'_, u64> {
        Box::pin(self.write(Commit::Durable, move |conn| {
            execute(
                conn,
                "DELETE FROM clients WHERE source = ?1 AND auth_method = ?2 \
                 AND COALESCE(last_authorized_at, issued_at) <= ?3 \
                 AND NOT EXISTS (SELECT 1 FROM grants WHERE grants.client_id = clients.client_id \
                     AND grants.expires_at > ?4 AND grants.revoked_at IS NULL)",
                params![
                    ClientSource::Dynamic.as_str(),
                    ClientAuthMethod::None.as_str(),
                    to_db(unused_since),
                    to_db(now),
                ],
                "cannot purge unused clients",
            )
            .map(count)
        }))
    }

    fn find_public_client<'a>(
        &'a self,
        registration_key: &'a TokenHash,
    ) -> StoreFuture<'a, Option<ClientRecord>> {
        Box::pin(async move { self.read(|conn| find_public_client(conn, registration_key)) })
    }

    fn put_public_client(
        &self,
        client: ClientRecord,
        registration_key: TokenHash,
    ) -> StoreFuture<'_, (ClientRecord, bool)> {
        Box::pin(async move {
            let (metadata, resources) = serialize_client(&client)?;
            // The unique index on registration_key decides, in one transaction: of concurrent
            // identical registrations exactly one inserts; the others read the winner.
            self.write(Commit::Durable, move |conn| {
                let inserted = execute(
                    conn,
                    "INSERT INTO clients \
                     (client_id, secret_hash, secret_expires_at, auth_method, metadata, issued_at, \
                      source, machine_scope, resources, registration_key, last_authorized_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                     ON CONFLICT (registration_key) WHERE registration_key IS NOT NULL DO NOTHING",
                    params![
                        client.client_id,
                        client.secret_hash.as_ref().map(blob),
                        to_db(client.secret_expires_at),
                        client.auth_method.as_str(),
                        metadata,
                        to_db(client.issued_at),
                        client.source.as_str(),
                        client.machine_scope,
                        resources,
                        blob(&registration_key),
                        client.last_authorized_at.map(to_db),
                    ],
                    "cannot store a client",
                )?;
                if inserted > 0 {
                    return Ok((client, true));
                }
                match find_public_client(conn, &registration_key)? {
                    Some(existing) => Ok((existing, false)),
                    None => Err(StoreError::new(
                        "the client registered with the same metadata was deleted meanwhile",
                    )),
                }
            })
            .await
        })
    }

    fn get_client<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<ClientRecord>> {
        Box::pin(async move {
            self.read(|conn| {
                query_one(
                    conn,
                    concat!(
                        "SELECT ",
                        client_columns!(),
                        " FROM clients WHERE client_id = ?1"
                    ),
                    [client_id],
                    "cannot read a client",
                    |row| client_from_row(row),
                )
            })
        })
    }

    fn delete_client<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, bool> {
        let client_id = client_id.to_owned();
        Box::pin(self.write(Commit::Durable, move |conn| {
            let done = execute(
                conn,
                "DELETE FROM clients WHERE client_id = ?1",
                [client_id],
                "cannot delete a client",
            )?;
            Ok(done > 0)
        }))
    }

    fn put_code(&self, code: CodeRecord) -> StoreFuture<'_, ()> {
        Box::pin(self.write(Commit::Light, move |conn| {
            // A plain INSERT: replacing a consumed code would make it fresh again.
            execute(
                conn,
                concat!(
                    "INSERT INTO codes (",
                    code_columns!(),
                    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ),
                params![
                    blob(&code.hash),
                    code.client_id,
                    code.redirect_uri,
                    code.redirect_uri_in_request,
                    code.code_challenge,
                    code.resource,
                    code.scope,
                    code.subject,
                    code.grant_id,
                    to_db(code.issued_at),
                    to_db(code.expires_at),
                ],
                "cannot store an authorization code",
            )?;
            Ok(())
        }))
    }

    fn take_code<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, CodeTake> {
        let hash = *hash;
        Box::pin(self.write(Commit::Light, move |conn| {
            // One statement under the write lock: exactly one caller flips `used` and gets the
            // row back.
            let taken = query_all(
                conn,
                concat!(
                    "UPDATE codes SET used = 1 WHERE hash = ?1 AND used = 0 RETURNING ",
                    code_columns!()
                ),
                [blob(&hash)],
                "cannot consume an authorization code",
                |row| code_from_row(row),
            )?;
            if let Some(code) = taken.into_iter().next() {
                return Ok(CodeTake::Fresh(code));
            }
            let replayed = query_one(
                conn,
                concat!("SELECT ", code_columns!(), " FROM codes WHERE hash = ?1"),
                [blob(&hash)],
                "cannot read an authorization code",
                |row| code_from_row(row),
            )?;
            Ok(replayed.map_or(CodeTake::Unknown, CodeTake::Replayed))
        }))
    }

    fn create_grant(
        &self,
        grant: GrantRecord,
        refresh: Option<RefreshRecord>,
    ) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if refresh
                .as_ref()
                .is_some_and(|r| r.grant_id != grant.grant_id)
            {
                return Err(foreign_refresh());
            }
            self.write(Commit::Durable, move |conn| {
                insert_grant(conn, &grant, refresh.as_ref())
            })
            .await
        })
    }

    fn get_grant<'a>(&'a self, grant_id: &'a str) -> StoreFuture<'a, Option<GrantRecord>> {
        Box::pin(async move {
            self.read(|conn| {
                query_one(
                    conn,
                    concat!(
                        "SELECT ",
                        grant_columns!(),
                        " FROM grants g WHERE g.grant_id = ?1"
                    ),
                    [grant_id],
                    "cannot read a grant",
                    |row| grant_from_row(row),
                )
            })
        })
    }

    fn get_refresh<'a>(
        &'a self,
        hash: &'a TokenHash,
    ) -> StoreFuture<'a, Option<(RefreshRecord, GrantRecord)>> {
        Box::pin(async move {
            self.read(|conn| {
                query_one(
                    conn,
                    concat!(
                        "SELECT ",
                        refresh_columns!(),
                        ", ",
                        grant_columns!(),
                        " FROM refresh_tokens r JOIN grants g ON g.grant_id = r.grant_id \
                         WHERE r.hash = ?1"
                    ),
                    [blob(hash)],
                    "cannot read a refresh token",
                    |row| Ok((refresh_from_row(row)?, grant_from_row(row)?)),
                )
            })
        })
    }

    fn rotate_refresh<'a>(
        &'a self,
        old: &'a TokenHash,
        new: RefreshRecord,
        now: u64,
        grace: u64,
    ) -> StoreFuture<'a, Rotation> {
        let old = *old;
        Box::pin(self.write(Commit::Durable, move |conn| {
            rotate(conn, &old, new, now, grace)
        }))
    }

    fn revoke_grant<'a>(&'a self, grant_id: &'a str, now: u64) -> StoreFuture<'a, bool> {
        let grant_id = grant_id.to_owned();
        Box::pin(self.write(Commit::Durable, move |conn| {
            revoke_family(conn, &grant_id, now)
        }))
    }

    fn revoke_access_token<'a>(
        &'a self,
        jti: &'a str,
        expires_at: u64,
        now: u64,
    ) -> StoreFuture<'a, ()> {
        let jti = jti.to_owned();
        Box::pin(self.write(Commit::Durable, move |conn| {
            execute(
                conn,
                "INSERT INTO revoked_access_tokens (jti, expires_at, revoked_at) \
                 VALUES (?1, ?2, ?3) \
                 ON CONFLICT (jti) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
                params![jti, to_db(expires_at), to_db(now)],
                "cannot revoke an access token",
            )?;
            Ok(())
        }))
    }

    fn is_access_token_revoked<'a>(&'a self, jti: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.read(|conn| {
                let row = query_one(
                    conn,
                    "SELECT 1 FROM revoked_access_tokens WHERE jti = ?1",
                    [jti],
                    "cannot read the access-token deny list",
                    |_| Ok(()),
                )?;
                Ok(row.is_some())
            })
        })
    }

    fn list_revocations(&self, now: u64, since: u64) -> StoreFuture<'_, Vec<Revoked>> {
        Box::pin(async move {
            self.read(|conn| {
                let mut revoked = query_all(
                    conn,
                    "SELECT jti, expires_at FROM revoked_access_tokens \
                     WHERE expires_at > ?1 AND revoked_at >= ?2",
                    [to_db(now), to_db(since)],
                    "cannot read the access-token deny list",
                    |row| {
                        Ok(Revoked::AccessToken {
                            jti: row.text("jti")?,
                            expires_at: row.time("expires_at")?,
                        })
                    },
                )?;
                revoked.extend(query_all(
                    conn,
                    "SELECT grant_id, revoked_at FROM grants \
                     WHERE revoked_at IS NOT NULL AND revoked_at >= ?1",
                    [to_db(since)],
                    "cannot read the revoked grants",
                    |row| {
                        Ok(Revoked::Grant {
                            grant_id: row.text("grant_id")?,
                            revoked_at: from_db(row.int("revoked_at")?),
                        })
                    },
                )?);
                Ok(revoked)
            })
        })
    }

    fn put_consent(&self, consent: ConsentRecord) -> StoreFuture<'_, ()> {
        Box::pin(self.write(Commit::Durable, move |conn| {
            let existing = query_one(
                conn,
                "SELECT scope FROM consents WHERE subject = ?1 AND client_id = ?2 AND resource = ?3",
                [&consent.subject, &consent.client_id, &consent.resource],
                "cannot read a consent",
                |row| row.text("scope"),
            )?;
            let scope = merge_scopes(existing.as_deref().unwrap_or(""), &consent.scope);
            execute(
                conn,
                "INSERT INTO consents (subject, client_id, resource, scope, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (subject, client_id, resource) \
                 DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at",
                params![
                    consent.subject,
                    consent.client_id,
                    consent.resource,
                    scope,
                    to_db(consent.updated_at),
                ],
                "cannot store a consent",
            )?;
            Ok(())
        }))
    }

    fn get_consent<'a>(
        &'a self,
        subject: &'a str,
        client_id: &'a str,
        resource: &'a str,
    ) -> StoreFuture<'a, Option<ConsentRecord>> {
        Box::pin(async move {
            self.read(|conn| {
                query_one(
                    conn,
                    "SELECT subject, client_id, resource, scope, updated_at FROM consents \
                     WHERE subject = ?1 AND client_id = ?2 AND resource = ?3",
                    [subject, client_id, resource],
                    "cannot read a consent",
                    |row| consent_from_row(row),
                )
            })
        })
    }

    fn put_key(&self, key: StoredKey) -> StoreFuture<'_, ()> {
        Box::pin(self.write(Commit::Durable, move |conn| {
            execute(
                conn,
                "INSERT OR REPLACE INTO signing_keys \
                 (kid, alg, pkcs8, created_at, activates_at, retired_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    key.kid,
                    key.alg,
                    key.pkcs8.as_slice(),
                    to_db(key.created_at),
                    to_db(key.activates_at),
                    key.retired_at.map(to_db),
                ],
                "cannot store a signing key",
            )?;
            Ok(())
        }))
    }

    fn list_keys(&self) -> StoreFuture<'_, Vec<StoredKey>> {
        Box::pin(async move {
            self.read(|conn| {
                query_all(
                    conn,
                    "SELECT kid, alg, pkcs8, created_at, activates_at, retired_at \
                     FROM signing_keys ORDER BY created_at, kid",
                    [],
                    "cannot read the signing keys",
                    |row| key_from_row(row),
                )
            })
        })
    }

    fn delete_key<'a>(&'a self, kid: &'a str) -> StoreFuture<'a, bool> {
        let kid = kid.to_owned();
        Box::pin(self.write(Commit::Durable, move |conn| {
            let done = execute(
                conn,
                "DELETE FROM signing_keys WHERE kid = ?1",
                [kid],
                "cannot delete a signing key",
            )?;
            Ok(done > 0)
        }))
    }

    fn list_active_grants<'a>(
        &'a self,
        subject: &'a str,
        now: u64,
    ) -> StoreFuture<'a, Vec<GrantRecord>> {
        Box::pin(async move {
            self.read(|conn| {
                query_all(
                    conn,
                    concat!(
                        "SELECT ",
                        grant_columns!(),
                        " FROM grants g WHERE g.subject = ?1 AND g.revoked_at IS NULL \
                         AND g.expires_at > ?2 ORDER BY g.grant_id"
                    ),
                    params![subject, to_db(now)],
                    "cannot read a user's grants",
                    |row| grant_from_row(row),
                )
            })
        })
    }

    // The upstream-token, flow, window and lease methods: the same forwarding in both backends.
    crate::store::sql::forward_to_backend_modules!();
}
