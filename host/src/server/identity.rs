//! Identity secrets stay in the host: the `session_id` sent to OpenRouter for provider stickiness
//! is HMAC-SHA256(K, chat id) computed here, where K is derived from `WEBUI_SECRET_KEY` with
//! HKDF-SHA256 under its own label ([`SESSION_ID_HKDF_INFO`]): the raw secret also signs Open
//! WebUI's session tokens, so it is never used directly as a MAC key for anything we send out, and a signed
//! `X-OpenWebUI-User-Jwt` (HS256, Open WebUI's `FORWARD_USER_INFO_HEADER_JWT_SECRET`) is verified
//! here. The component only ever receives the results.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// HKDF-SHA256 info of the `session_id` MAC key (no salt; the input key is `WEBUI_SECRET_KEY`).
pub const SESSION_ID_HKDF_INFO: &[u8] = b"responses-pipe session-id v1";

/// Hex HMAC-SHA256 of the chat id under a key derived from `WEBUI_SECRET_KEY` (HKDF-SHA256, info
/// [`SESSION_ID_HKDF_INFO`]): stable per chat, unlinkable to the secret, and never a value Open
/// WebUI itself signs with the secret.
pub fn cache_session_id(secret: &SecretString, chat_id: &str) -> Option<String> {
    let mut key = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(None, secret.expose_secret().as_bytes())
        .expand(SESSION_ID_HKDF_INFO, &mut key)
        .ok()?;
    let mac = HmacSha256::new_from_slice(&key);
    key.fill(0);
    let mut mac = mac.ok()?;
    mac.update(chat_id.as_bytes());
    Some(hex::encode(mac.finalize().into_bytes()))
}

/// Why a user JWT was not accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not three base64url parts")]
    Malformed,
    #[error("the token's algorithm is not HS256")]
    Algorithm,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token was not issued by open-webui")]
    Issuer,
}

/// The claims Open WebUI puts in its forwarded user token.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct UserClaims {
    pub sub: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Option<String>,
    pub iss: Option<String>,
    pub exp: Option<u64>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

/// Verify an HS256 token and return its claims. `now_secs` is the current Unix time.
pub fn verify_user_jwt(
    token: &str,
    secret: &SecretString,
    now_secs: u64,
) -> Result<UserClaims, JwtError> {
    let mut parts = token.trim().split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    if header.alg != "HS256" {
        return Err(JwtError::Algorithm);
    }
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let mut mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
        .map_err(|_| JwtError::Signature)?;
    mac.update(h.as_bytes());
    mac.update(b".");
    mac.update(p.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&signature)
        .map_err(|_| JwtError::Signature)?;
    let claims: UserClaims = URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    if claims.exp.is_some_and(|exp| exp <= now_secs) {
        return Err(JwtError::Expired);
    }
    if claims.iss.as_deref().is_some_and(|iss| iss != "open-webui") {
        return Err(JwtError::Issuer);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(payload: &str, secret: &str) -> String {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let p = URL_SAFE_NO_PAD.encode(payload.as_bytes());
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{h}.{p}").as_bytes());
        format!(
            "{h}.{p}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn a_token_signed_with_the_secret_verifies_and_others_do_not() {
        let secret = SecretString::from("s3cret");
        let token = sign(
            r#"{"sub":"u1","email":"a@b.c","name":"Ada","role":"user","iss":"open-webui","exp":2000}"#,
            "s3cret",
        );
        let claims = verify_user_jwt(&token, &secret, 1000).unwrap();
        assert_eq!(claims.sub.as_deref(), Some("u1"));
        assert_eq!(claims.name.as_deref(), Some("Ada"));
        assert_eq!(
            verify_user_jwt(&token, &secret, 2000),
            Err(JwtError::Expired)
        );
        let forged = sign(r#"{"sub":"admin","iss":"open-webui"}"#, "other");
        assert_eq!(
            verify_user_jwt(&forged, &secret, 1000),
            Err(JwtError::Signature)
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(b"{}")
        );
        assert_eq!(
            verify_user_jwt(&none, &secret, 1000),
            Err(JwtError::Algorithm)
        );
        assert_eq!(
            verify_user_jwt("garbage", &secret, 1000),
            Err(JwtError::Malformed)
        );
    }

    #[test]
    fn the_cache_session_id_is_a_stable_keyed_hash_of_the_chat() {
        let k = SecretString::from("key");
        let a = cache_session_id(&k, "chat-1").unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(a, cache_session_id(&k, "chat-1").unwrap());
        assert_ne!(a, cache_session_id(&k, "chat-2").unwrap());
        assert_ne!(
            a,
            cache_session_id(&SecretString::from("other"), "chat-1").unwrap()
        );
        // Never the HMAC under the raw secret (which also signs Open WebUI's tokens); the MAC
        // key is HKDF-SHA256(secret, info "responses-pipe session-id v1").
        let mut raw = HmacSha256::new_from_slice(b"key").unwrap();
        raw.update(b"chat-1");
        assert_ne!(a, hex::encode(raw.finalize().into_bytes()));
        let mut derived = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(None, b"key")
            .expand(b"responses-pipe session-id v1", &mut derived)
            .unwrap();
        let mut mac = HmacSha256::new_from_slice(&derived).unwrap();
        mac.update(b"chat-1");
        assert_eq!(a, hex::encode(mac.finalize().into_bytes()));
    }
}
