//! The authorization run: how a new grant is obtained, with a user (the authorization code flow)
//! or without one (client credentials, JWT bearer, enterprise-managed).
//!
//! The [`TokenManager`](crate::TokenManager) decides *when* to authorize and keeps what comes
//! back; this module does one run. See the [module docs](crate::authorize) for the steps.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use mcp_auth_core::{
    OFFLINE_ACCESS, ScopeSet, Secret,
    challenge::BearerChallenge,
    pkce::{CodeChallenge, CodeVerifier, S256},
};

use super::{browser::BrowserOpener, loopback::LoopbackRedirect};
use crate::{
    discovery::{Discovery, checked},
    dpop::ProofKey,
    error::{AuthError, AuthErrorKind},
    fetch::UrlPolicy,
    registration::{Registrar, TokenEndpointAuthMethod},
    store::StoredClient,
    token_endpoint::{Grant, TokenEndpoint},
};

/// Which scopes an authorization asks for.
pub(crate) enum Scopes {
    /// The selection strategy (SPEC C-20): the challenge's `scope`, else the PRM's
    /// `scopes_supported`, else none.
    Select,
    /// Exactly these.
    Exactly(ScopeSet),
    /// Step-up: what the selection strategy gives, plus what was granted before (SPEC C-29).
    StepUp(ScopeSet),
}

impl Scopes {
    /// The scopes to request from `found`'s authorization server: the selection strategy (the
    /// `challenge`'s `scope`, else the PRM's `scopes_supported`, else none), exactly the given
    /// ones, or the selection plus what was granted. Then SEP-2207 (SPEC-2026 N-14):
    /// `offline_access` is the authorization server's scope. It is asked for only when that
    /// server lists it — added then (when `offline_access` is on), and dropped otherwise even if
    /// a challenge or the resource metadata named it.
    pub(crate) fn requested(
        self,
        challenge: Option<&BearerChallenge>,
        found: &Discovery,
        offline_access: bool,
    ) -> ScopeSet {
        let selected = || {
            challenge
                .and_then(BearerChallenge::scopes)
                .or_else(|| found.scopes_supported())
                .unwrap_or_default()
        };
        let requested = match self {
            Self::Select => selected(),
            Self::Exactly(s) => s,
            Self::StepUp(granted) => granted.union(&selected()),
        };
        let offline = offline_scope();
        let as_lists_offline = found
            .authorization_server_metadata()
            .scopes_supported
            .iter()
            .any(|s| s == OFFLINE_ACCESS);
        if !as_lists_offline {
            requested.difference(&offline)
        } else if offline_access {
            requested.union(&offline)
        } else {
            requested
        }
    }
}

/// `offline_access` as a set.
fn offline_scope() -> ScopeSet {
    ScopeSet::parse(OFFLINE_ACCESS).unwrap_or_default()
}

/// Enterprise-managed authorization (SEP-990): where the identity assertion grant comes from.
#[derive(Debug, Clone)]
pub(crate) struct Enterprise {
    /// The enterprise IdP's token endpoint (RFC 8693 token exchange).
    pub(crate) idp_token_endpoint: String,
    /// This client's id at the IdP.
    pub(crate) idp_client_id: String,
    /// The user's ID token from the IdP (the subject token).
    pub(crate) id_token: Secret,
}

/// What a run obtained: the tokens, from which token endpoint, for which client and scopes.
pub(crate) struct Obtained {
    pub(crate) grant: Grant,
    /// The scopes asked for: what was granted when the token response does not say.
    pub(crate) requested: ScopeSet,
    /// The DPoP key the tokens are bound to, if any.
    pub(crate) key: Option<ProofKey>,
    pub(crate) token_endpoint: String,
    pub(crate) client: StoredClient,
}

/// One authorization run: what it needs from the manager's configuration.
pub(crate) struct Run<'a> {
    pub(crate) policy: UrlPolicy,
    pub(crate) browser: &'a dyn BrowserOpener,
    /// The loopback redirect port; 0 for a free one (then a registered client's port if free).
    pub(crate) redirect_port: u16,
    pub(crate) authorization_timeout: std::time::Duration,
    pub(crate) registrar: Registrar<'a>,
    pub(crate) token_endpoint: TokenEndpoint<'a>,
}

impl Run<'_> {
    /// The authorization code flow with `found`'s authorization server for `requested` scopes
    /// (SPEC C-11..C-24). `key` gives the DPoP key of the token request (none without DPoP); it
    /// is asked for once the authorization response is in.
    pub(crate) async fn code_flow(
        &self,
        found: &Discovery,
        requested: &ScopeSet,
        key: impl Future<Output = Result<Option<ProofKey>, AuthError>>,
    ) -> Result<Obtained, AuthError> {
        // The loopback listener first: dynamic registration needs its redirect URI. A client
        // registered earlier gets its registered port back if it is free.
        let stored_client = self.registrar.store.load_client(found.issuer()).await?;
        let registered_port = stored_client
            .as_ref()
            .and_then(|c| c.redirect_uris.first())
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.port());
        let listener = match registered_port.filter(|_| self.redirect_port == 0) {
            Some(port) => match LoopbackRedirect::bind(port).await {
                Ok(l) => l,
                Err(_) => LoopbackRedirect::bind(0).await?,
            },
            None => LoopbackRedirect::bind(self.redirect_port).await?,
        };
        let redirect_uri = listener.redirect_uri().to_owned();
        let client = self.registrar.client(found, &redirect_uri).await?;

        let verifier = CodeVerifier::generate();
        let code_challenge = CodeChallenge::s256(&verifier);
        let state = random_state()?;
        let metadata = found.authorization_server_metadata();
        let endpoint = metadata
            .authorization_endpoint
            .as_deref()
            .unwrap_or_default();
        let mut url = checked(self.policy, endpoint, "the authorization endpoint")?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &client.client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("code_challenge", code_challenge.as_str())
                .append_pair("code_challenge_method", S256)
                .append_pair("state", &state)
                .append_pair("resource", found.resource());
            if !requested.is_empty() {
                query.append_pair("scope", &requested.to_string());
            }
        }
        // SPEC C-10: the URL opened is https (or loopback http when allowed) — checked again
        // after building, whatever the endpoint looked like.
        let url = checked(self.policy, url.as_str(), "the authorization URL")?;
        event!(
            info,
            issuer = %found.issuer(),
            client_id = %client.client_id,
            scope = %requested,
            "starting authorization"
        );

        let receive = listener.receive(&state, self.authorization_timeout);
        let open = self.browser.open(url.as_str());
        tokio::pin!(receive);
        tokio::pin!(open);
        let mut opened = false;
        let response = loop {
            tokio::select! {
                biased;
                received = &mut receive => break received?,
                result = &mut open, if !opened => {
                    opened = true;
                    result?;
                }
            }
        };

        // RFC 9207: a present `iss` must be the issuer, byte for byte; an advertised one must be
        // present (SPEC C-21 mix-up defence).
        match response.iss() {
            Some(iss) if iss != found.issuer() => {
                event!(warn, "the authorization response names another issuer");
                return Err(AuthError::new(AuthErrorKind::IssuerMismatch)
                    .with_detail("the authorization response's iss is not the issuer"));
            }
            None if metadata.authorization_response_iss_parameter_supported => {
                return Err(AuthError::new(AuthErrorKind::IssuerMismatch)
                    .with_detail("the authorization response has no iss"));
            }
            _ => {}
        }

        let token_endpoint = metadata.token_endpoint.clone().unwrap_or_default();
        let form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", response.code().expose().to_owned()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose().to_owned()),
            ("resource", found.resource().to_owned()),
        ];
        let key = key.await?;
        let grant = self
            .token_endpoint
            .request(&token_endpoint, form, &client, key.as_ref())
            .await?;
        Ok(Obtained {
            grant,
            requested: requested.clone(),
            key,
            token_endpoint,
            client,
        })
    }

    /// A grant without a user (SPEC-2026 E-1, E-3): the client credentials grant (RFC 6749 §4.4)
    /// with pre-registered credentials that hold a secret or a private key, or the JWT bearer
    /// grant (RFC 7523 §2.1) with `jwt_bearer_assertion` or, for `enterprise`, the identity
    /// assertion grant the IdP exchanged the ID token for (SEP-990). `offline_access` is never
    /// asked for: such a client can always get a new access token. `resource` is sent as on
    /// every token request (SPEC C-19). A rejection is returned as is: no other grant is tried.
    /// `key` gives the DPoP key of the token request, asked for once the client is known.
    pub(crate) async fn without_user(
        &self,
        found: &Discovery,
        requested: &ScopeSet,
        key: impl Future<Output = Result<Option<ProofKey>, AuthError>>,
        jwt_bearer_assertion: Option<&Secret>,
        enterprise: Option<&Enterprise>,
    ) -> Result<Obtained, AuthError> {
        let requested = &requested.difference(&offline_scope());
        let id_jag = match enterprise {
            Some(enterprise) => Some(
                self.token_endpoint
                    .token_exchange(
                        &enterprise.idp_token_endpoint,
                        &enterprise.idp_client_id,
                        &enterprise.id_token,
                        found.issuer(),
                        found.resource(),
                        requested,
                    )
                    .await?,
            ),
            None => None,
        };
        let jwt_bearer = id_jag.as_ref().or(jwt_bearer_assertion);
        let client = self
            .registrar
            .preregistered(found.issuer())
            .filter(|c| {
                jwt_bearer_assertion.is_some()
                    || c.client_secret.is_some()
                    || c.token_endpoint_auth_method == TokenEndpointAuthMethod::PrivateKeyJwt
            })
            .ok_or_else(|| {
                AuthError::new(AuthErrorKind::Registration).with_detail(
                    "a grant without a user needs pre-registered credentials (with a secret or a private key for client credentials)",
                )
            })?;
        let token_endpoint = found
            .authorization_server_metadata()
            .token_endpoint
            .clone()
            .unwrap_or_default();
        let mut form = match jwt_bearer {
            Some(assertion) => vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned(),
                ),
                ("assertion", assertion.expose().to_owned()),
            ],
            None => vec![("grant_type", "client_credentials".to_owned())],
        };
        form.push(("resource", found.resource().to_owned()));
        if !requested.is_empty() {
            form.push(("scope", requested.to_string()));
        }
        let key = key.await?;
        event!(
            info,
            issuer = %found.issuer(),
            client_id = %client.client_id,
            scope = %requested,
            jwt_bearer = jwt_bearer.is_some(),
            dpop = key.is_some(),
            "requesting a token without a user"
        );
        let grant = self
            .token_endpoint
            .request(&token_endpoint, form, &client, key.as_ref())
            .await?;
        Ok(Obtained {
            grant,
            requested: requested.clone(),
            key,
            token_endpoint,
            client,
        })
    }
}

fn random_state() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| {
        AuthError::new(AuthErrorKind::Protocol).with_detail("the random source failed")
    })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
