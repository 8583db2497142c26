//! Random secrets and ids (codes, refresh tokens, client secrets, `jti`s). A leaf: it names
//! nothing else in the crate; [`RandomUnavailable`] becomes `server_error` where an endpoint
//! answers.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The system's random generator failed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RandomUnavailable;

/// 256 random bits, base64url (43 characters): codes, refresh tokens, client secrets.
pub(crate) fn random_secret() -> Result<String, RandomUnavailable> {
    random_b64::<32>()
}

/// 128 random bits, base64url (22 characters): ids (`jti`, grants, clients, transactions).
pub(crate) fn random_id() -> Result<String, RandomUnavailable> {
    random_b64::<16>()
}

fn random_b64<const N: usize>() -> Result<String, RandomUnavailable> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| RandomUnavailable)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_carry_256_bits_and_differ() {
        let a = random_secret().unwrap();
        let b = random_secret().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(random_id().unwrap().len(), 22);
    }
}
