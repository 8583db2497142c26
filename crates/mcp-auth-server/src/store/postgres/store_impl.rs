//! `impl Store for PostgresStore`: the trait's operations on this backend; the vault's records
//! are in [`upstream`](super::upstream), short-lived records in [`flows`](super::flows).

use super::*;

impl Store for PostgresStore {
    fn put_client(&self, client: ClientRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let (metadata, resources) = serialize_client(&client)?;
            // Replacing forgets the registration key, as a new row would.
            sqlx::query(
                "INSERT INTO clients \
                 (client_id, secret_hash, secret_expires_at, auth_method, metadata, issued_at, \
                  source, machine_scope, resources, last_authorized_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (client_id) DO UPDATE SET \
                   secret_hash = EXCLUDED.secret_hash, \
                   secret_expires_at = EXCLUDED.secret_expires_at, \
                   auth_method = EXCLUDED.auth_method, metadata = EXCLUDED.metadata, \
                   issued_at = EXCLUDED.issued_at, source = EXCLUDED.source, \
                   machine_scope = EXCLUDED.machine_scope, resources = EXCLUDED.resources, \
                   last_authorized_at = EXCLUDED.last_authorized_at, registration_key = NULL",
            )
            .bind(client.client_id.as_str())
            .bind(client.secret_hash.as_ref().map(|h| h.as_bytes().as_slice()))
            .bind(to_db(client.secret_expires_at))
            .bind(client.auth_method.as_str())
            .bind(metadata)
            .bind(to_db(client.issued_at))
            .bind(client.source.as_str())
            .bind(client.machine_scope.as_deref())
            .bind(resources)
            .bind(client.last_authorized_at.map(to_db))
            .execute(&self.pool)
            .await
            .map_err(db_error("cannot store a client"))?;
            Ok(())
        })
    }

    fn get_client<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<ClientRecord>> {
        if has_nul(&[client_id]) {
            return ready(None);
        }
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                client_columns!(),
                " FROM clients WHERE client_id = $1"
            ))
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("cannot read a client"))?;
            row.as_ref().map(client_from_row).transpose()
        })
    }

    fn delete_client<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, bool> {
        if has_nul(&[client_id]) {
            return ready(false);
        }
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM clients WHERE client_id = $1")
                .bind(client_id)
                .execute(&self.pool)
                .await
                .map_err(db_error("cannot delete a client"))?;
            Ok(done.rows_affected() > 0)
        })
    }

    fn client_authorized<'a>(&'a self, client_id: &'a str, now: u64) -> StoreFuture<'a, ()> {
        if has_nul(&[client_id]) {
            return ready(());
        }
        Box::pin(async move {
            sqlx::query("UPDATE clients SET last_authorized_at = $2 WHERE client_id = $1")
                .bind(client_id)
                .bind(to_db(now))
                .execute(&self.pool)
                .await
                .map_err(db_error("cannot record a client's authorization"))?;
            Ok(())
        })
    }

    fn purge_unused_public_clients(&self, unused_since: u64, now: u64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let done = sqlx::query(
                "DELETE FROM clients WHERE source = $1 AND auth_method = $2 \
                 AND COALESCE(last_authorized_at, issued_at) <= $3 \
                 AND NOT EXISTS (SELECT 1 FROM grants WHERE grants.client_id = clients.client_id \
                     AND grants.expires_at > $4 AND grants.revoked_at IS NULL)",
            )
            .bind(ClientSource::Dynamic.as_str())
            .bind(ClientAuthMethod::None.as_str())
            .bind(to_db(unused_since))
            .bind(to_db(now))
            .execute(&self.pool)
            .await
            .map_err(db_error("cannot purge unused clients"))?;
            Ok(done.rows_affected())
        })
    }

    fn find_public_client<'a>(
        &'a self,
        registration_key: &'a TokenHash,
    ) -> StoreFuture<'a, Option<ClientRecord>> {
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                client_columns!(),
                " FROM clients WHERE registration_key = $1"
            ))
            .bind(registration_key.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("cannot read a client"))?;
            row.as_ref().map(client_from_row).transpose()
        })
    }

    fn put_public_client(
        &self,
        client: ClientRecord,
        registration_key: TokenHash,
    ) -> StoreFuture<'_, (ClientRecord, bool)> {
        Box::pin(async move {
            let (metadata, resources) = serialize_client(&client)?;
            // The unique index on registration_key decides: of concurrent identical
            // registrations exactly one inserts (the others wait for it, then do nothing and
            // read the winner).
            let inserted = sqlx::query(
                "INSERT INTO clients \
                 (client_id, secret_hash, secret_expires_at, auth_method, metadata, issued_at, \
                  source, machine_scope, resources, registration_key, last_authorized_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (registration_key) WHERE registration_key IS NOT NULL DO NOTHING",
            )
            .bind(client.client_id.as_str())
            .bind(client.secret_hash.as_ref().map(|h| h.as_bytes().as_slice()))
            .bind(to_db(client.secret_expires_at))
            .bind(client.auth_method.as_str())
            .bind(metadata)
            .bind(to_db(client.issued_at))
            .bind(client.source.as_str())
            .bind(client.machine_scope.as_deref())
            .bind(resources)
            .bind(registration_key.as_bytes().as_slice())
            .bind(client.last_authorized_at.map(to_db))
            .execute(&self.pool)
            .await
            .map_err(db_error("cannot store a client"))?
            .rows_affected();
            if inserted > 0 {
                return Ok((client, true));
            }
            match self.find_public_client(&registration_key).await? {
                Some(existing) => Ok((existing, false)),
                None => Err(StoreError::new(
                    "the client registered with the same metadata was deleted meanwhile",
                )),
            }
        })
    }

    fn put_code(&self, code: CodeRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            // A plain INSERT: replacing a consumed code would make it fresh again.
            sqlx::query(concat!(
                "INSERT INTO codes (",
                code_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ))
            .bind(code.hash.as_bytes().as_slice())
            .bind(code.client_id.as_str())
            .bind(code.redirect_uri.as_str())
            .bind(code.redirect_uri_in_request)
            .bind(code.code_challenge.as_str())
            .bind(code.resource.as_str())
            .bind(code.scope.as_str())
            .bind(code.subject.as_str())
            .bind(code.grant_id.as_str())
            .bind(to_db(code.issued_at))
            .bind(to_db(code.expires_at))
            .execute(&self.pool)
            .await
            .map_err(db_error("cannot store an authorization code"))?;
            Ok(())
        })
    }

    fn take_code<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, CodeTake> {
        Box::pin(async move {
            // One statement: concurrent callers queue on the row's lock, and each re-checks
            // `NOT used` on the row as the one before left it, so exactly one gets it back.
            let taken = sqlx::query(concat!(
                "UPDATE codes SET used = TRUE WHERE hash = $1 AND NOT used RETURNING ",
                code_columns!()
            ))
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("cannot consume an authorization code"))?;
            if let Some(row) = taken {
                return Ok(CodeTake::Fresh(code_from_row(&row)?));
            }
            let row = sqlx::query(concat!(
                "SELECT ",
                code_columns!(),
                " FROM codes WHERE hash = $1"
            ))
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("cannot read an authorization code"))?;
            Ok(match row {
                Some(row) => CodeTake::Replayed(code_from_row(&row)?),
                None => CodeTake::Unknown,
            })
        })
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
            // One statement, so one round trip and its own transaction: the grant and, when
            // there is one, its first refresh token (checked against the grant at the
            // statement's end, as foreign keys are).
            let sql = if refresh.is_some() {
                "WITH g AS (INSERT INTO grants \
                 (grant_id, client_id, subject, scope, resource, created_at, expires_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING grant_id) \
                 INSERT INTO refresh_tokens \
                 (hash, grant_id, scope, issued_at, expires_at, state, parent, rotated_at, dpop_jkt) \
                 SELECT $9, g.grant_id, $10, $11, $12, $13, $14, $15, $16 FROM g"
            } else {
                "INSERT INTO grants \
                 (grant_id, client_id, subject, scope, resource, created_at, expires_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            };
            let mut query = sqlx::query(sql)
                .bind(grant.grant_id.as_str())
                .bind(grant.client_id.as_str())
                .bind(grant.subject.as_str())
                .bind(grant.scope.as_str())
                .bind(grant.resource.as_str())
                .bind(to_db(grant.created_at))
                .bind(to_db(grant.expires_at))
                .bind(grant.revoked_at.map(to_db));
            if let Some(refresh) = &refresh {
                query = query
                    .bind(refresh.hash.as_bytes().as_slice())
                    .bind(refresh.scope.as_str())
                    .bind(to_db(refresh.issued_at))
                    .bind(to_db(refresh.expires_at))
                    .bind(refresh.state.as_str())
                    .bind(refresh.parent.as_ref().map(|p| p.as_bytes().as_slice()))
                    .bind(refresh.rotated_at.map(to_db))
                    .bind(refresh.dpop_jkt.as_deref());
            }
            query
                .execute(&self.pool)
                .await
                .map_err(db_error("cannot store a grant"))?;
            Ok(())
        })
    }

    fn get_grant<'a>(&'a self, grant_id: &'a str) -> StoreFuture<'a, Option<GrantRecord>> {
        if has_nul(&[grant_id]) {
            return ready(None);
        }
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                grant_columns!(),
                " FROM grants g WHERE g.grant_id = $1"
            ))
            .bind(grant_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("cannot read a grant"))?;
            row.as_ref().map(grant_from_row).transpose()
        })
    }

    fn get_refresh<'a>(
        &'a self,
        hash: &'a TokenHash,
    ) -> StoreFuture<'a, Option<(RefreshRecord, GrantRecord)>> {
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                refresh_columns!(),
                ", ",
                grant_columns!(),
                " FROM refresh_tokens r JOIN grants g ON g.grant_id = r.grant_id WHERE r.hash = $1"
            ))
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("cannot read a refresh token"))?;
            row.map(|row| Ok((refresh_from_row(&row)?, grant_from_row(&row)?)))
                .transpose()
        })
    }

    fn rotate_refresh<'a>(
        &'a self,
        old: &'a TokenHash,
        new: RefreshRecord,
        now: u64,
        grace: u64,
    ) -> StoreFuture<'a, Rotation> {
        Box::pin(self.rotate(old, new, now, grace))
    }

    fn revoke_grant<'a>(&'a self, grant_id: &'a str, now: u64) -> StoreFuture<'a, bool> {
        if has_nul(&[grant_id]) {
            return ready(false);
        }
        Box::pin(async move {
            let mut tx = begin(&self.pool).await?;
            let was_active = revoke_family(&mut tx, grant_id, now).await?;
            commit(tx).await?;
            Ok(was_active)
        })
    }

    fn revoke_access_token<'a>(
        &'a self,
        jti: &'a str,
        expires_at: u64,
        now: u64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO revoked_access_tokens (jti, expires_at, revoked_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (jti) DO UPDATE SET \
                 expires_at = GREATEST(revoked_access_tokens.expires_at, EXCLUDED.expires_at)",
            )
            .bind(jti)
            .bind(to_db(expires_at))
            .bind(to_db(now))
            .execute(&self.pool)
            .await
            .map_err(db_error("cannot revoke an access token"))?;
            Ok(())
        })
    }

    fn is_access_token_revoked<'a>(&'a self, jti: &'a str) -> StoreFuture<'a, bool> {
        if has_nul(&[jti]) {
            return ready(false);
        }
        Box::pin(async move {
            let row: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM revoked_access_tokens WHERE jti = $1")
                    .bind(jti)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error("cannot read the access-token deny list"))?;
            Ok(row.is_some())
        })
    }

    fn list_revocations(&self, now: u64, since: u64) -> StoreFuture<'_, Vec<Revoked>> {
        Box::pin(async move {
            let tokens: Vec<(String, i64)> = sqlx::query_as(
                "SELECT jti, expires_at FROM revoked_access_tokens \
                 WHERE expires_at > $1 AND revoked_at >= $2",
            )
            .bind(to_db(now))
            .bind(to_db(since))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error("cannot read the access-token deny list"))?;
            let grants: Vec<(String, i64)> = sqlx::query_as(
                "SELECT grant_id, revoked_at FROM grants \
                 WHERE revoked_at IS NOT NULL AND revoked_at >= $1",
            )
            .bind(to_db(since))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error("cannot read the revoked grants"))?;
            Ok(tokens
                .into_iter()
                .map(|(jti, expires_at)| Revoked::AccessToken {
                    jti,
                    expires_at: from_db(expires_at),
                })
                .chain(
                    grants
                        .into_iter()
                        .map(|(grant_id, revoked_at)| Revoked::Grant {
                            grant_id,
                            revoked_at: from_db(revoked_at),
                        }),
                )
                .collect())
        })
    }

    fn put_consent(&self, consent: ConsentRecord) -> StoreFuture<'_, ()> {
        Box::pin(self.consent(consent))
    }

    fn get_consent<'a>(
        &'a self,
        subject: &'a str,
        client_id: &'a str,
        resource: &'a str,
    ) -> StoreFuture<'a, Option<ConsentRecord>> {
        if has_nul(&[subject, client_id, resource]) {
            return ready(None);
        }
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT subject, client_id, resource, scope, updated_at FROM consents \
                 WHERE subject = $1 AND client_id = $2 AND resource = $3",
            )
            .bind(subject)
            .bind(client_id)
            .bind(resource)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("cannot read a consent"))?;
            row.as_ref().map(consent_from_row).transpose()
        })
    }

    fn put_key(&self, key: StoredKey) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO signing_keys \
                 (kid, alg, pkcs8, created_at, activates_at, retired_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (kid) DO UPDATE SET alg = EXCLUDED.alg, pkcs8 = EXCLUDED.pkcs8, \
                   created_at = EXCLUDED.created_at, activates_at = EXCLUDED.activates_at, \
                   retired_at = EXCLUDED.retired_at",
            )
            .bind(key.kid.as_str())
            .bind(key.alg.as_str())
            .bind(key.pkcs8.as_slice())
            .bind(to_db(key.created_at))
            .bind(to_db(key.activates_at))
            .bind(key.retired_at.map(to_db))
            .execute(&self.pool)
            .await
            .map_err(db_error("cannot store a signing key"))?;
            Ok(())
        })
    }

    fn list_keys(&self) -> StoreFuture<'_, Vec<StoredKey>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT kid, alg, pkcs8, created_at, activates_at, retired_at FROM signing_keys \
                 ORDER BY created_at, kid COLLATE \"C\"",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(db_error("cannot read the signing keys"))?;
            rows.iter().map(key_from_row).collect()
        })
    }

    fn delete_key<'a>(&'a self, kid: &'a str) -> StoreFuture<'a, bool> {
        if has_nul(&[kid]) {
            return ready(false);
        }
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                .bind(kid)
                .execute(&self.pool)
                .await
                .map_err(db_error("cannot delete a signing key"))?;
            Ok(done.rows_affected() > 0)
        })
    }

    fn list_active_grants<'a>(
        &'a self,
        subject: &'a str,
        now: u64,
    ) -> StoreFuture<'a, Vec<GrantRecord>> {
        if has_nul(&[subject]) {
            return ready(Vec::new());
        }
        Box::pin(async move {
            let rows = sqlx::query(concat!(
                "SELECT ",
                grant_columns!(),
                " FROM grants g WHERE g.subject = $1 AND g.revoked_at IS NULL \
                 AND g.expires_at > $2 ORDER BY g.grant_id COLLATE \"C\""
            ))
            .bind(subject)
            .bind(to_db(now))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error("cannot read a user's grants"))?;
            rows.iter().map(grant_from_row).collect()
        })
    }

    // The upstream-token, flow, window and lease methods: the same forwarding in both backends.
    crate::store::sql::forward_to_backend_modules!();
}
