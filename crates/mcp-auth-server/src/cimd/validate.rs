//! Validation of a fetched document (AS-35, AS-37): what a metadata document must say to
//! become a public client.

use mcp_auth_core::metadata::ClientMetadata;

use super::{CimdError, CimdErrorKind};
use crate::store::{ClientRecord, ClientSource};

/// Validate a fetched document (AS-35, AS-37) and turn it into a public client.
pub(crate) fn validate_document(
    client_id: &str,
    body: &[u8],
    now: u64,
) -> Result<ClientRecord, CimdError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| CimdError::invalid_document("it is not valid JSON"))?;
    let serde_json::Value::Object(mut object) = value else {
        return Err(CimdError::invalid_document("it is not a JSON object"));
    };
    match object.get("client_id") {
        Some(serde_json::Value::String(id)) if id == client_id => {}
        Some(serde_json::Value::String(_)) => {
            return Err(CimdError::invalid_document(
                "its client_id is not the URL it was fetched from",
            ));
        }
        _ => return Err(CimdError::invalid_document("it has no client_id")),
    }
    match object.get("client_name") {
        Some(serde_json::Value::String(name)) if !name.trim().is_empty() => {}
        _ => return Err(CimdError::invalid_document("it has no client_name")),
    }
    match object.get("redirect_uris") {
        Some(serde_json::Value::Array(uris)) if !uris.is_empty() => {
            for uri in uris {
                let Some(uri) = uri.as_str() else {
                    return Err(CimdError::invalid_document("redirect_uris must be strings"));
                };
                crate::redirect::check_registrable(uri).map_err(CimdError::invalid_document)?;
            }
        }
        _ => return Err(CimdError::invalid_document("it has no redirect_uris")),
    }
    if object.contains_key("client_secret") || object.contains_key("client_secret_expires_at") {
        return Err(CimdError::new(
            CimdErrorKind::AuthMethod,
            "the client metadata document must not contain a client secret",
        ));
    }
    let mut auth_method = crate::store::ClientAuthMethod::None;
    match object.get("token_endpoint_auth_method") {
        None => {}
        Some(serde_json::Value::String(m)) if m == "none" => {}
        Some(serde_json::Value::String(m))
            if matches!(
                m.as_str(),
                "client_secret_basic" | "client_secret_post" | "client_secret_jwt"
            ) =>
        {
            return Err(CimdError::new(
                CimdErrorKind::AuthMethod,
                "the client metadata document uses a shared-secret token_endpoint_auth_method, which metadata documents must not use",
            ));
        }
        Some(serde_json::Value::String(m)) if m == "private_key_jwt" => {
            if !cfg!(feature = "jwt-assertions") {
                return Err(CimdError::new(
                    CimdErrorKind::AuthMethod,
                    "the client metadata document uses private_key_jwt, which this server does not support",
                ));
            }
            // CIMD-00 §6.2: keys by jwks_uri (or inline jwks), exactly one of them.
            let uri = object.get("jwks_uri");
            let jwks = object.get("jwks");
            match (uri, jwks) {
                (Some(serde_json::Value::String(_)), None)
                | (None, Some(serde_json::Value::Object(_))) => {}
                _ => {
                    return Err(CimdError::new(
                        CimdErrorKind::AuthMethod,
                        "a client metadata document using private_key_jwt needs exactly one of jwks_uri and jwks",
                    ));
                }
            }
            auth_method = crate::store::ClientAuthMethod::PrivateKeyJwt;
        }
        Some(_) => {
            return Err(CimdError::new(
                CimdErrorKind::AuthMethod,
                "the client metadata document uses an unsupported token_endpoint_auth_method (only none is accepted)",
            ));
        }
    }
    // The identifier is the record's, not metadata.
    object.remove("client_id");
    let metadata: ClientMetadata = serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|_| CimdError::invalid_document("a member has the wrong type"))?;
    let mut record =
        ClientRecord::public(client_id, metadata, now).with_source(ClientSource::MetadataDocument);
    // A private_key_jwt document makes a confidential client that must authenticate so.
    record.auth_method = auth_method;
    Ok(record)
}
