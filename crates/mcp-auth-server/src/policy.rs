//! What a client may obtain: one decision for every grant.
//!
//! Rules (the crate's security section repeats them):
//! 1. **Machine grants are arranged, never self-served.** `client_credentials` is off unless the
//!    deployment turns it on, and then only a confidential client the operator registered with an
//!    explicit machine scope list gets a token. Open registration and Client ID Metadata Documents
//!    never do (registration refuses the grant type outright).
//! 2. **Scopes are bounded everywhere.** Every scope must be one the server knows. A user grant
//!    gets at most what was asked and approved; a refresh at most what the grant holds (it can only
//!    narrow); a machine grant at most the client's machine scope list. An operator-registered
//!    client's registered `scope` bounds all of its grants. Asking for more is `invalid_scope`,
//!    never a silent narrowing.
//! 3. **Resources are bounded too.** A token names one resource the server issues for (RFC 8707),
//!    and, for a client the operator restricted, one of its resources; anything else is
//!    `invalid_target`.
//!
//! The registered `scope` of a client that registered *itself* (open registration, a metadata
//! document) is its own claim, not an arrangement, so it does not bound user grants: the user's
//! approval does. Clients rely on this: the official TypeScript SDK registers with the scope of its
//! first challenge and later steps up to more with the same `client_id`.

use mcp_auth_core::error::ErrorCode;
use mcp_auth_core::{ResourceId, ScopeSet};

use crate::config::Config;
use crate::error::OAuthError;
use crate::store::ClientRecord;

/// Which grant a scope is decided for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Grant<'a> {
    /// An authorization request: what the user will be asked to approve (and the code carries).
    Authorization,
    /// A refresh of a grant that holds `granted`.
    Refresh {
        /// The grant's scope.
        granted: &'a ScopeSet,
    },
    /// `client_credentials`.
    Machine,
}

/// Whether the client registered `grant` (RFC 7591 §2: no list means `authorization_code`; MCP
/// clients that omit the list may also refresh what they obtained).
pub(crate) fn registered_for(client: &ClientRecord, grant: &str) -> bool {
    let types = &client.metadata.grant_types;
    types.iter().any(|g| g == grant) || (types.is_empty() && grant != "client_credentials")
}

/// The scope to issue for `grant` when the client asked for `requested` (the raw `scope`
/// parameter), or why not.
pub(crate) fn scope(
    config: &Config,
    client: &ClientRecord,
    grant: Grant<'_>,
    requested: Option<&str>,
) -> Result<ScopeSet, OAuthError> {
    let requested = requested
        .map(|raw| {
            ScopeSet::parse(raw)
                .map_err(|_| OAuthError::new(ErrorCode::InvalidScope, "scope is malformed"))
        })
        .transpose()?;
    if let Some(asked) = &requested
        && let Some(unknown) = asked.iter().find(|s| !config.scopes.contains(s.as_str()))
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("unknown scope {}", unknown.as_str()),
        ));
    }
    // An operator's registration of the client bounds every grant it gets.
    let registered = match (&client.metadata.scope, client.is_operator_registered()) {
        (Some(raw), true) => Some(ScopeSet::parse(raw).map_err(|_| OAuthError::server_error())?),
        _ => None,
    };
    let bound = |set: ScopeSet| match &registered {
        Some(r) => set.intersection(r),
        None => set,
    };

    let (ceiling, default, beyond) = match grant {
        Grant::Authorization => (
            bound(config.scopes.clone()),
            bound(config.default_scopes.clone()),
            "this client may not request",
        ),
        Grant::Refresh { granted } => (
            bound(granted.clone()),
            bound(granted.clone()),
            "a refresh may not widen the scope to",
        ),
        Grant::Machine => {
            machine_allowed(config, client)?;
            let allowed = client
                .machine_scope
                .as_deref()
                .and_then(|raw| ScopeSet::parse(raw).ok())
                .map(|set| bound(set.intersection(&config.scopes)))
                .filter(|set| !set.is_empty())
                .ok_or_else(|| {
                    OAuthError::new(
                        ErrorCode::UnauthorizedClient,
                        "no machine scopes are arranged for this client",
                    )
                })?;
            (allowed.clone(), allowed, "this client may not obtain")
        }
    };
    match requested {
        None => Ok(default),
        Some(asked) => match asked.iter().find(|s| !ceiling.contains(s.as_str())) {
            Some(extra) => Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("{beyond} {}", extra.as_str()),
            )),
            None => Ok(asked),
        },
    }
}

/// Rule 1: may this client use a machine grant at all?
fn machine_allowed(config: &Config, client: &ClientRecord) -> Result<(), OAuthError> {
    let refuse = |why: &'static str| Err(OAuthError::new(ErrorCode::UnauthorizedClient, why));
    if !config.client_credentials {
        return refuse("this server does not allow the client_credentials grant");
    }
    if client.is_public() {
        return refuse("client_credentials is for confidential clients only");
    }
    if !client.is_operator_registered() {
        return refuse("client_credentials is only for clients the operator registered");
    }
    if !registered_for(client, "client_credentials") {
        return refuse("this client is not registered for client_credentials");
    }
    Ok(())
}

/// The resource to issue a new grant for (rule 3): the one requested, or the default when none
/// is, among the server's resources and the client's.
pub(crate) fn resource<'c>(
    config: &'c Config,
    client: &ClientRecord,
    requested: Option<&str>,
) -> Result<&'c ResourceId, OAuthError> {
    let target = |message: &'static str| OAuthError::new(ErrorCode::InvalidTarget, message);
    let allowed = |r: &ResourceId| {
        client.resources.is_empty()
            || client
                .resources
                .iter()
                .any(|mine| r.matches_loopback_alias(mine))
    };
    let resolved = match (requested, client.resources.first()) {
        // A restricted client that names nothing gets its own first resource.
        (None, Some(_)) => config
            .resources
            .iter()
            .find(|r| allowed(r))
            .ok_or_else(|| target("none of this client's resources is served here"))?,
        _ => config.resolve_resource(requested).map_err(target)?,
    };
    if !allowed(resolved) {
        return Err(target(
            "this client may not obtain tokens for that resource",
        ));
    }
    Ok(resolved)
}

/// Rule 3 for a grant that exists (a code's, a refresh token's): a `resource` the request names
/// must be the one authorized.
pub(crate) fn granted_resource(granted: &str, requested: Option<&str>) -> Result<(), OAuthError> {
    match requested {
        Some(raw) if !ResourceId::parse(granted).is_ok_and(|r| r.matches_loopback_alias(raw)) => {
            Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "resource differs from the one authorized",
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use mcp_auth_core::metadata::ClientMetadata;

    use super::*;
    use crate::store::{ClientAuthMethod, ClientSource, TokenHash};

    const MCP: &str = "https://mcp.example.com/mcp";
    const OTHER: &str = "https://other.example.com/mcp";

    fn set(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    pub(crate) fn config(client_credentials: bool) -> Config {
        let day = Duration::from_secs(86_400);
        Config {
            issuer: "https://mcp.example.com".into(),
            issuer_path: String::new(),
            secure_cookies: true,
            loopback: false,
            resources: vec![
                ResourceId::parse(MCP).unwrap(),
                ResourceId::parse(OTHER).unwrap(),
            ],
            default_resource: Some(ResourceId::parse(MCP).unwrap()),
            scopes: set("mcp:tools notes:read notes:write notes:admin mcp:admin"),
            scopes_advertised: set("mcp:tools notes:read"),
            default_scopes: set("mcp:tools"),
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: day,
            public_refresh_token_ttl: day,
            refresh_grace: 30,
            grant_ttl: day,
            code_ttl: Duration::from_secs(60),
            dynamic_registration: true,
            reuse_public_registrations: true,
            unused_public_client_ttl: Duration::from_secs(30 * 24 * 3600),
            client_credentials,
            issue_refresh_tokens: true,
            introspection_clients: Vec::new(),
            max_body_bytes: 65_536,
            request_timeout: Duration::from_secs(30),
            #[cfg(feature = "dpop")]
            dpop: None,
        }
    }

    /// The registration kinds a client can come from.
    #[derive(Debug, Clone, Copy)]
    enum Kind {
        /// Open registration, public (`none`).
        DynamicPublic,
        /// Open registration, confidential, with `client_credentials` in its grant types and a
        /// registered scope naming everything (as an old database may hold).
        DynamicConfidential,
        /// A Client ID Metadata Document.
        MetadataDocument,
        /// Operator-registered machine client: machine scope `notes:read mcp:tools`.
        Machine,
        /// Operator-registered confidential client without a machine scope list.
        OperatorNoAllowList,
        /// Operator-registered client whose registered scope is `mcp:tools notes:read`.
        OperatorBounded,
    }

    fn client(kind: Kind) -> ClientRecord {
        let mut metadata = ClientMetadata::default();
        metadata.redirect_uris = vec!["http://127.0.0.1/cb".into()];
        let confidential = |metadata| {
            ClientRecord::confidential(
                "c",
                ClientAuthMethod::ClientSecretBasic,
                TokenHash::of("s"),
                metadata,
                0,
            )
        };
        match kind {
            Kind::DynamicPublic => ClientRecord::public("c", metadata, 0),
            Kind::DynamicConfidential => {
                metadata.grant_types =
                    vec!["authorization_code".into(), "client_credentials".into()];
                metadata.scope =
                    Some("mcp:tools notes:read notes:write notes:admin mcp:admin".into());
                confidential(metadata)
            }
            Kind::MetadataDocument => {
                metadata.scope = Some("mcp:tools".into());
                ClientRecord::public("https://app.example/client.json", metadata, 0)
                    .with_source(ClientSource::MetadataDocument)
            }
            Kind::Machine => {
                metadata.grant_types = vec!["client_credentials".into()];
                confidential(metadata)
                    .with_source(ClientSource::Static)
                    .with_machine_scope("notes:read mcp:tools")
            }
            Kind::OperatorNoAllowList => {
                metadata.grant_types =
                    vec!["authorization_code".into(), "client_credentials".into()];
                confidential(metadata).with_source(ClientSource::Static)
            }
            Kind::OperatorBounded => {
                metadata.scope = Some("mcp:tools notes:read".into());
                ClientRecord::public("c", metadata, 0).with_source(ClientSource::Static)
            }
        }
    }

    /// `Ok(scope)` or the error code.
    fn decide(
        kind: Kind,
        grant: Grant<'_>,
        requested: Option<&str>,
        cc: bool,
    ) -> Result<String, String> {
        scope(&config(cc), &client(kind), grant, requested)
            .map(|s| s.to_string())
            .map_err(|e| e.code.as_str().to_owned())
    }

    #[test]
    fn every_grant_times_every_registration_kind_times_requested_scope() {
        use Kind::*;
        let granted = set("mcp:tools notes:read");
        let auth = Grant::Authorization;
        let refresh = Grant::Refresh { granted: &granted };
        let machine = Grant::Machine;
        let ok = |s: &str| Ok::<String, String>(s.to_owned());
        let err = |c: &str| Err::<String, String>(c.to_owned());
        type Row<'a> = (
            Kind,
            Grant<'a>,
            Option<&'a str>,
            bool,
            Result<String, String>,
        );
        #[rustfmt::skip]
        let rows: Vec<Row<'_>> = vec![
            // User grants: what the user will approve; self-registered scope does not bound.
            (DynamicPublic, auth, None, false, ok("mcp:tools")),
            (DynamicPublic, auth, Some("notes:read"), false, ok("notes:read")),
            (DynamicPublic, auth, Some("notes:admin mcp:admin"), false, ok("notes:admin mcp:admin")),
            (DynamicPublic, auth, Some("root"), false, err("invalid_scope")),
            (DynamicPublic, auth, Some("mcp:tools\u{7f}"), false, err("invalid_scope")),
            (DynamicConfidential, auth, Some("notes:write"), true, ok("notes:write")),
            (MetadataDocument, auth, Some("mcp:tools notes:write"), false, ok("mcp:tools notes:write")),
            (OperatorBounded, auth, None, false, ok("mcp:tools")),
            (OperatorBounded, auth, Some("notes:read"), false, ok("notes:read")),
            (OperatorBounded, auth, Some("notes:read notes:write"), false, err("invalid_scope")),
            (OperatorBounded, auth, Some("unknown:x"), false, err("invalid_scope")),
            // Refresh: only narrows.
            (DynamicPublic, refresh, None, false, ok("mcp:tools notes:read")),
            (DynamicPublic, refresh, Some("notes:read"), false, ok("notes:read")),
            (DynamicPublic, refresh, Some("notes:read notes:write"), false, err("invalid_scope")),
            (DynamicPublic, refresh, Some("mcp:admin"), false, err("invalid_scope")),
            (DynamicPublic, refresh, Some("nope"), false, err("invalid_scope")),
            (MetadataDocument, refresh, None, false, ok("mcp:tools notes:read")),
            (OperatorBounded, refresh, Some("mcp:tools"), false, ok("mcp:tools")),
            // Machine grants: arranged only.
            (DynamicPublic, machine, None, true, err("unauthorized_client")),
            (DynamicPublic, machine, Some("mcp:tools"), true, err("unauthorized_client")),
            (DynamicConfidential, machine, None, true, err("unauthorized_client")),
            (DynamicConfidential, machine, Some("notes:admin mcp:admin"), true, err("unauthorized_client")),
            (MetadataDocument, machine, Some("mcp:tools"), true, err("unauthorized_client")),
            (OperatorNoAllowList, machine, Some("mcp:tools"), true, err("unauthorized_client")),
            (OperatorNoAllowList, machine, None, true, err("unauthorized_client")),
            (OperatorBounded, machine, None, true, err("unauthorized_client")),
            (Machine, machine, None, true, ok("notes:read mcp:tools")),
            (Machine, machine, Some("mcp:tools"), true, ok("mcp:tools")),
            (Machine, machine, Some("notes:read mcp:tools"), true, ok("notes:read mcp:tools")),
            (Machine, machine, Some("notes:admin"), true, err("invalid_scope")),
            (Machine, machine, Some("notes:admin mcp:admin"), true, err("invalid_scope")),
            (Machine, machine, Some("bogus"), true, err("invalid_scope")),
            (Machine, machine, None, false, err("unauthorized_client")),
            (Machine, machine, Some("mcp:tools"), false, err("unauthorized_client")),
            // Machine clients do not get user grants beyond what exists either.
            (Machine, auth, Some("mcp:admin"), true, ok("mcp:admin")),
        ];
        for (kind, grant, requested, cc, want) in rows {
            assert_eq!(
                decide(kind, grant, requested, cc),
                want,
                "{kind:?} {grant:?} {requested:?} client_credentials={cc}"
            );
        }
    }

    #[test]
    fn an_operator_registered_scope_bounds_its_machine_allow_list() {
        let mut c = client(Kind::Machine);
        c.metadata.scope = Some("mcp:tools".into());
        let cfg = config(true);
        assert_eq!(
            scope(&cfg, &c, Grant::Machine, None).unwrap().to_string(),
            "mcp:tools"
        );
        let e = scope(&cfg, &c, Grant::Machine, Some("notes:read")).unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_scope");
    }

    #[test]
    fn an_existing_grant_keeps_its_resource() {
        assert!(granted_resource(MCP, None).is_ok());
        assert!(granted_resource(MCP, Some(MCP)).is_ok());
        assert!(granted_resource(MCP, Some("HTTPS://MCP.example.com:443/mcp")).is_ok());
        let e = granted_resource(MCP, Some(OTHER)).unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_target");
    }

    #[test]
    fn resources_are_the_servers_and_the_clients() {
        let cfg = config(true);
        let open = client(Kind::DynamicPublic);
        assert_eq!(resource(&cfg, &open, None).unwrap().as_str(), MCP);
        assert_eq!(resource(&cfg, &open, Some(OTHER)).unwrap().as_str(), OTHER);
        let e = resource(&cfg, &open, Some("https://evil.example/mcp")).unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_target");

        let restricted = client(Kind::Machine).with_resources([OTHER]);
        assert_eq!(resource(&cfg, &restricted, None).unwrap().as_str(), OTHER);
        assert_eq!(
            resource(&cfg, &restricted, Some(OTHER)).unwrap().as_str(),
            OTHER
        );
        let e = resource(&cfg, &restricted, Some(MCP)).unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_target");

        let nowhere = client(Kind::Machine).with_resources(["https://gone.example/mcp"]);
        let e = resource(&cfg, &nowhere, None).unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_target");
    }

    #[test]
    fn the_loopback_spellings_of_a_loopback_resource_are_one_audience() {
        const LOCAL: &str = "http://127.0.0.1:8080/mcp";
        let mut cfg = config(true);
        cfg.resources = vec![ResourceId::parse(LOCAL).unwrap()];
        cfg.default_resource = None;
        let open = client(Kind::DynamicPublic);
        // Whatever loopback name the client used, the grant is for the configured identifier,
        // so the audience the resource server checks stays exact.
        for spelling in [LOCAL, "http://localhost:8080/mcp", "http://[::1]:8080/mcp"] {
            assert_eq!(
                resource(&cfg, &open, Some(spelling)).unwrap().as_str(),
                LOCAL
            );
            assert!(granted_resource(LOCAL, Some(spelling)).is_ok());
        }
        for other in [
            "http://localhost:8081/mcp",
            "http://localhost:8080/other",
            "https://localhost:8080/mcp",
            "http://evil.example:8080/mcp",
        ] {
            let e = resource(&cfg, &open, Some(other)).unwrap_err();
            assert_eq!(e.code.as_str(), "invalid_target", "{other}");
            assert!(granted_resource(LOCAL, Some(other)).is_err(), "{other}");
        }
        // Public resources get no such leniency.
        assert!(granted_resource(MCP, Some("https://localhost/mcp")).is_err());
    }
}
