//! Identity secrets stay in the host: the `session_id` sent to OpenRouter for provider stickiness
//! is HMAC-SHA256(K, chat id) computed here, where K is derived from `WEBUI_SECRET_KEY` with
//! HKDF-SHA256 under its own label ([`SESSION_ID_HKDF_INFO`]): the raw secret also signs Open
//! WebUI's session tokens, so it is never used directly as a MAC key for anything we send out, and a signed
//! `X-OpenWebUI-User-Jwt` (HS256, Open WebUI's `FORWARD_USER_INFO_HEADER_JWT_SECRET`) is verified
//! here. The component only ever receives the results.
//!
//! What Open WebUI signs: when user forwarding is on and that secret is set, Open WebUI sends
//! this one token instead of the four plain user headers. Its claims are `sub` (the user id),
//! `email`, `name`, `role`, `iss` = `open-webui`, and `iat`/`exp` (a short life, five minutes
//! unless the operator changes it). The chat id, message id and task still arrive as their own
//! headers. So a token is accepted only when it is HS256 under the secret, issued by
//! `open-webui`, carries a user id and both times, and is within [`CLOCK_LEEWAY_SECS`] of its
//! validity window.

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

/// Clock difference tolerated between Open WebUI and this host, in seconds.
pub const CLOCK_LEEWAY_SECS: u64 = 60;

/// The issuer Open WebUI writes into its user tokens.
pub const ISSUER: &str = "open-webui";

/// Why a user JWT was not accepted. The texts are shown to the caller: they name the rule,
/// never the token or the secret.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not three base64url parts holding JSON")]
    Malformed,
    #[error("the token's algorithm is not HS256")]
    Algorithm,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (issued in the future)")]
    NotYetValid,
    #[error("the token was not issued by open-webui")]
    Issuer,
    #[error("the token has no `{0}` claim")]
    MissingClaim(&'static str),
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
    pub iat: Option<u64>,
    /// Not written by Open WebUI; honoured when present.
    pub nbf: Option<u64>,
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
    match claims.iss.as_deref() {
        None => return Err(JwtError::MissingClaim("iss")),
        Some(ISSUER) => {}
        Some(_) => return Err(JwtError::Issuer),
    }
    if claims.sub.as_deref().is_none_or(|s| s.trim().is_empty()) {
        return Err(JwtError::MissingClaim("sub"));
    }
    let exp = claims.exp.ok_or(JwtError::MissingClaim("exp"))?;
    let iat = claims.iat.ok_or(JwtError::MissingClaim("iat"))?;
    if exp.saturating_add(CLOCK_LEEWAY_SECS) <= now_secs {
        return Err(JwtError::Expired);
    }
    let latest_start = now_secs.saturating_add(CLOCK_LEEWAY_SECS);
    if iat > latest_start || claims.nbf.is_some_and(|nbf| nbf > latest_start) {
        return Err(JwtError::NotYetValid);
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

    const NOW: u64 = 1_000_000;

    fn claims(extra: &str) -> String {
        format!(
            r#"{{"sub":"u1","email":"a@b.c","name":"Ada","role":"user","iss":"open-webui","iat":{},"exp":{}{extra}}}"#,
            NOW - 10,
            NOW + 290
        )
    }

    #[test]
    fn a_token_signed_with_the_secret_verifies_and_others_do_not() {
        let secret = SecretString::from("s3cret");
        let token = sign(&claims(""), "s3cret");
        let c = verify_user_jwt(&token, &secret, NOW).unwrap();
        assert_eq!(c.sub.as_deref(), Some("u1"));
        assert_eq!(c.name.as_deref(), Some("Ada"));
        let forged = sign(&claims(""), "other");
        assert_eq!(
            verify_user_jwt(&forged, &secret, NOW),
            Err(JwtError::Signature)
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims("").as_bytes())
        );
        assert_eq!(
            verify_user_jwt(&none, &secret, NOW),
            Err(JwtError::Algorithm)
        );
        for garbage in ["garbage", "a.b", "a.b.c.d", ""] {
            assert_eq!(
                verify_user_jwt(garbage, &secret, NOW),
                Err(JwtError::Malformed),
                "{garbage}"
            );
        }
    }

    #[test]
    fn expiry_is_checked_with_a_minute_of_leeway() {
        let secret = SecretString::from("s3cret");
        let token = sign(&claims(""), "s3cret");
        let exp = NOW + 290;
        assert!(verify_user_jwt(&token, &secret, exp).is_ok(), "at exp");
        assert!(
            verify_user_jwt(&token, &secret, exp + 59).is_ok(),
            "within leeway"
        );
        assert_eq!(
            verify_user_jwt(&token, &secret, exp + 60),
            Err(JwtError::Expired)
        );
        // Issued in the future: a minute of skew is fine, more is not.
        let iat = NOW - 10;
        assert!(verify_user_jwt(&token, &secret, iat - 60).is_ok());
        assert_eq!(
            verify_user_jwt(&token, &secret, iat - 61),
            Err(JwtError::NotYetValid)
        );
        let nbf = sign(&claims(&format!(r#","nbf":{}"#, NOW + 120)), "s3cret");
        assert_eq!(
            verify_user_jwt(&nbf, &secret, NOW),
            Err(JwtError::NotYetValid)
        );
    }

    #[test]
    fn issuer_user_and_both_times_are_required() {
        let secret = SecretString::from("s3cret");
        let without = |claim: &str| {
            let mut v: serde_json::Value = serde_json::from_str(&claims("")).unwrap();
            v.as_object_mut().unwrap().remove(claim);
            sign(&v.to_string(), "s3cret")
        };
        for claim in ["iss", "sub", "exp", "iat"] {
            assert_eq!(
                verify_user_jwt(&without(claim), &secret, NOW),
                Err(JwtError::MissingClaim(match claim {
                    "iss" => "iss",
                    "sub" => "sub",
                    "exp" => "exp",
                    _ => "iat",
                })),
                "{claim}"
            );
        }
        let other_issuer = sign(&claims("").replace("open-webui", "someone-else"), "s3cret");
        assert_eq!(
            verify_user_jwt(&other_issuer, &secret, NOW),
            Err(JwtError::Issuer)
        );
        let blank_user = sign(
            &claims("").replace(r#""sub":"u1""#, r#""sub":" ""#),
            "s3cret",
        );
        assert_eq!(
            verify_user_jwt(&blank_user, &secret, NOW),
            Err(JwtError::MissingClaim("sub"))
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
