//! Front-door authentication: `Authorization: Bearer <key>` checked against `PIPE_API_KEYS`.
//! Keys are compared as SHA-256 digests with a constant-time equality, so neither the content nor
//! the length of a configured key leaks through timing. With no keys configured the host only
//! listens on loopback (enforced at start-up), and every local caller is accepted.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The configured client keys, held as digests.
pub struct ClientKeys {
    digests: Vec<[u8; 32]>,
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl ClientKeys {
    pub fn new(keys: &[SecretString]) -> Self {
        ClientKeys {
            digests: keys.iter().map(|k| digest(k.expose_secret())).collect(),
        }
    }

    /// No keys: open (loopback only).
    pub fn is_open(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether an `Authorization` header value carries a configured key.
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        if self.is_open() {
            return true;
        }
        let Some(token) = authorization.and_then(|h| {
            let (scheme, rest) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        }) else {
            return false;
        };
        let presented = digest(token);
        // Check every key so the time taken does not reveal which one matched.
        self.digests
            .iter()
            .fold(subtle::Choice::from(0u8), |acc, d| {
                acc | d.ct_eq(&presented)
            })
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_configured_bearer_key_is_accepted() {
        let keys = ClientKeys::new(&[SecretString::from("k1"), SecretString::from("k2")]);
        assert!(keys.allows(Some("Bearer k2")));
        assert!(keys.allows(Some("bearer k1")));
        assert!(!keys.allows(Some("Bearer k3")));
        assert!(!keys.allows(Some("k1")));
        assert!(!keys.allows(Some("Basic k1")));
        assert!(!keys.allows(None));
        assert!(ClientKeys::new(&[]).allows(None));
    }
}
