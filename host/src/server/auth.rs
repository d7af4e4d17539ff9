//! Front-door authentication: `Authorization: Bearer <key>` checked against the client keys of
//! `PIPE_API_KEYS` (plain API clients) and `OPENWEBUI_API_KEYS` (Open WebUI instances). Keys are
//! compared as SHA-256 digests with a constant-time equality, every configured key on every
//! request, so neither the content, the length nor the position of a configured key leaks through
//! timing. A match yields the key's name and kind (the [`Caller`]), never the key.
//!
//! With no keys at all the host only listens on loopback (enforced at start-up) and every local
//! caller is the trusted caller `local`: it may assert Open WebUI identity, as an Open WebUI key
//! may. The server's request guard refuses browser pages in that mode (Host and Origin checks).

use crate::config::{ClientKey, KeyKind};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// The caller's name on a host without client keys.
pub const LOCAL_CALLER: &str = "local";

/// Who authenticated a request: a configured key's name and whether it may assert Open WebUI
/// identity. Shared by every request of that key.
#[derive(Debug)]
pub struct Caller {
    /// The key's name (`local` without keys): the caller's identity in logs, breakers and
    /// stored data.
    pub name: String,
    /// May assert Open WebUI identity (the user, chat, message and task headers, the user
    /// token): an `OPENWEBUI_API_KEYS` key, or the keyless loopback host.
    pub openwebui: bool,
    /// Whether ignoring this key's Open WebUI headers was logged already (once per key).
    ignored_headers_logged: AtomicBool,
}

impl Caller {
    fn new(name: &str, openwebui: bool) -> Arc<Caller> {
        Arc::new(Caller {
            name: name.to_owned(),
            openwebui,
            ignored_headers_logged: AtomicBool::new(false),
        })
    }

    /// True the first time it is called for this caller: say so once, not per request.
    pub fn first_ignored_headers(&self) -> bool {
        !self.ignored_headers_logged.swap(true, Ordering::Relaxed)
    }
}

/// The configured client keys, held as digests, with the caller each one stands for.
pub struct ClientKeys {
    digests: Vec<[u8; 32]>,
    callers: Vec<Arc<Caller>>,
    /// The caller of a keyless host.
    local: Arc<Caller>,
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl ClientKeys {
    pub fn new(keys: &[ClientKey]) -> Self {
        ClientKeys {
            digests: keys.iter().map(|k| digest(k.key.expose_secret())).collect(),
            callers: keys
                .iter()
                .map(|k| Caller::new(&k.name, k.kind == KeyKind::OpenWebUi))
                .collect(),
            local: Caller::new(LOCAL_CALLER, true),
        }
    }

    /// No keys: open (loopback only).
    pub fn is_open(&self) -> bool {
        self.digests.is_empty()
    }

    /// The caller an `Authorization` header value authenticates, if any. A keyless host
    /// accepts everyone as [`LOCAL_CALLER`].
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<Arc<Caller>> {
        if self.is_open() {
            return Some(self.local.clone());
        }
        let token = authorization.and_then(|h| {
            let (scheme, rest) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })?;
        let presented = digest(token);
        // Check every key, selecting the match without branching on it, so the time taken does
        // not reveal whether or which key matched. Positions are 1-based; 0 is "none".
        let mut found = 0u32;
        for (i, d) in self.digests.iter().enumerate() {
            let position = u32::try_from(i + 1).unwrap_or(u32::MAX);
            found = u32::conditional_select(&found, &position, d.ct_eq(&presented));
        }
        let index = usize::try_from(found).ok()?.checked_sub(1)?;
        self.callers.get(index).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::client_keys;
    use secrecy::SecretString;

    fn keys(api: &str, owui: &str) -> ClientKeys {
        let s = |v: &str| (!v.is_empty()).then(|| SecretString::from(v.to_owned()));
        ClientKeys::new(&client_keys::parse(s(api).as_ref(), s(owui).as_ref()).unwrap())
    }

    fn who(k: &ClientKeys, auth: Option<&str>) -> Option<(String, bool)> {
        k.authenticate(auth).map(|c| (c.name.clone(), c.openwebui))
    }

    #[test]
    fn only_a_configured_bearer_key_is_accepted_and_names_its_caller() {
        let k = keys("k1,alice=k2", "owui=k3");
        assert_eq!(who(&k, Some("Bearer k1")), Some(("key-1".into(), false)));
        assert_eq!(who(&k, Some("bearer k2")), Some(("alice".into(), false)));
        assert_eq!(who(&k, Some("Bearer  k3 ")), Some(("owui".into(), true)));
        assert_eq!(who(&k, Some("Bearer k4")), None);
        assert_eq!(who(&k, Some("Bearer alice")), None, "a name is not a key");
        assert_eq!(who(&k, Some("k1")), None);
        assert_eq!(who(&k, Some("Basic k1")), None);
        assert_eq!(who(&k, Some("Bearer ")), None);
        assert_eq!(who(&k, None), None);
        assert!(!k.is_open());
    }

    #[test]
    fn open_webui_keys_alone_are_not_keyless_and_no_keys_is_the_local_caller() {
        let only_owui = keys("", "owui-key");
        assert!(!only_owui.is_open());
        assert_eq!(who(&only_owui, None), None);
        assert_eq!(
            who(&only_owui, Some("Bearer owui-key")),
            Some(("openwebui-1".into(), true))
        );
        let open = keys("", "");
        assert!(open.is_open());
        assert_eq!(
            who(&open, None),
            Some((LOCAL_CALLER.into(), true)),
            "keyless loopback counts as trusted"
        );
    }

    #[test]
    fn ignored_headers_are_reported_once_per_caller() {
        let k = keys("a=k1,b=k2", "");
        let a = k.authenticate(Some("Bearer k1")).unwrap();
        assert!(a.first_ignored_headers());
        let again = k.authenticate(Some("Bearer k1")).unwrap();
        assert!(!again.first_ignored_headers(), "same key: already said");
        let b = k.authenticate(Some("Bearer k2")).unwrap();
        assert!(b.first_ignored_headers());
    }
}
