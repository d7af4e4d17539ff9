//! The `crypto` capability: artifact encryption with keys only the host holds.
//!
//! Threat handled: artifacts at rest (reasoning items with provider-encrypted content, tool
//! outputs) read or altered by someone with access to the database, and a row copied onto
//! another row's identity. Each record is AES-256-GCM (RustCrypto `aes-gcm`) under a key derived
//! from `ARTIFACT_ENCRYPTION_KEY` by HKDF-SHA256, with a fresh 96-bit nonce from the OS CSPRNG
//! (`getrandom`, the same source that seeds the host's `wasi:random`) and the record's identity
//! (chosen by the guest: table, row id, chat id, item type, owner) as associated data.
//! Not handled: an attacker who holds the key or controls the host process; hiding payload length
//! (compression before encryption only changes length, data at rest only).
//!
//! Record layout (`seal` output):
//! `version (1 byte, 0x01) ‖ key id (4 bytes) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`.
//!
//! Key derivation (fixed labels, changing them changes every key):
//! - AES key: HKDF-SHA256(salt = [`HKDF_SALT`], ikm = the configured key, info = [`INFO_AES_KEY`]) → 32 bytes.
//! - key id: HKDF-SHA256(same salt and ikm, info = [`INFO_KEY_ID`]) → 4 bytes. A one-way
//!   fingerprint of the key, independent of the AES key, that only says which key sealed a record.
//!
//! Rotation: `ARTIFACT_ENCRYPTION_KEY_PREVIOUS` is kept for reading. `seal` always uses the
//! current key; `open` picks the key named by the record's key id (current or previous); a record
//! naming neither is `unknown-key`. Random nonces keep collisions under 2^-32 up to 2^32 seals
//! per key (NIST SP 800-38D §8.3); seals are counted per key id in
//! `responses_pipe_artifact_seals_total` so an operator can see when to rotate.
//!
//! Key material is held as `SecretString` until derivation and then only inside the cipher
//! (zeroized on drop by `aes`); nothing key-derived except the 4-byte id is kept, and nothing
//! key-derived is logged or sent to the guest.

use crate::bindings::crypto;
use crate::metrics::Metrics;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::sync::Arc;

/// Format version of a sealed record.
pub const RECORD_VERSION: u8 = 1;
/// HKDF salt for artifact keys.
pub const HKDF_SALT: &[u8] = b"responses-pipe/artifact-encryption/v1";
/// HKDF info for the AES-256-GCM key.
pub const INFO_AES_KEY: &[u8] = b"responses-pipe artifact aes-256-gcm key";
/// HKDF info for the 4-byte key id.
pub const INFO_KEY_ID: &[u8] = b"responses-pipe artifact key id";

const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

/// Largest plaintext one record may carry. The guest compresses before sealing; reasoning items
/// with provider-encrypted content are tens of KiB, tool outputs are pruned long before this.
/// 8 MiB bounds the host memory one call can make us allocate twice (input and output).
pub const MAX_PLAINTEXT_BYTES: usize = 8 << 20;

/// Why a record could not be sealed or opened (mirrors the WIT `crypto-error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("no artifact key is configured")]
    NotConfigured,
    #[error("the record is malformed, altered, bound to other data or sealed under another key")]
    InvalidRecord,
    #[error("the record names a key id this host does not hold")]
    UnknownKey,
    #[error("the record exceeds the per-record cap")]
    TooLarge,
}

impl From<CryptoError> for crypto::CryptoError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::NotConfigured => crypto::CryptoError::NotConfigured,
            CryptoError::InvalidRecord => crypto::CryptoError::InvalidRecord,
            CryptoError::UnknownKey => crypto::CryptoError::UnknownKey,
            CryptoError::TooLarge => crypto::CryptoError::TooLarge,
        }
    }
}

/// One derived key.
struct ArtifactKey {
    id: [u8; KEY_ID_LEN],
    /// `key_<8 hex>`: the metrics label (bounded: at most two keys per process).
    label: &'static str,
    cipher: Aes256Gcm,
}

impl ArtifactKey {
    fn derive(secret: &SecretString) -> Option<Self> {
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), secret.expose_secret().as_bytes());
        let mut key = [0u8; 32];
        let mut id = [0u8; KEY_ID_LEN];
        hk.expand(INFO_AES_KEY, &mut key).ok()?;
        hk.expand(INFO_KEY_ID, &mut id).ok()?;
        let cipher = Aes256Gcm::new_from_slice(&key).ok()?;
        key.fill(0);
        // Leaked once per configured key (at most two per process), so the metrics table can
        // keep its `&'static str` labels.
        let label: &'static str = Box::leak(format!("key_{}", hex::encode(id)).into_boxed_str());
        Some(ArtifactKey { id, label, cipher })
    }
}

/// The artifact keys of this host: the current one (seals and opens) and, after a rotation, the
/// previous one (opens only).
pub struct ArtifactCrypto {
    current: Option<ArtifactKey>,
    previous: Option<ArtifactKey>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for ArtifactCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactCrypto")
            .field("enabled", &self.current.is_some())
            .field("previous", &self.previous.is_some())
            .finish()
    }
}

impl ArtifactCrypto {
    /// Keys from `ARTIFACT_ENCRYPTION_KEY` and `ARTIFACT_ENCRYPTION_KEY_PREVIOUS`. Without a
    /// current key nothing is sealed (`not-configured`); a previous key alone still opens old
    /// records. A previous key equal to the current one is ignored.
    pub fn new(
        current: Option<&SecretString>,
        previous: Option<&SecretString>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let current = current.and_then(ArtifactKey::derive);
        let previous = previous
            .and_then(ArtifactKey::derive)
            .filter(|p| current.as_ref().is_none_or(|c| c.id != p.id));
        ArtifactCrypto {
            current,
            previous,
            metrics,
        }
    }

    /// No keys at all.
    pub fn disabled(metrics: Arc<Metrics>) -> Self {
        Self::new(None, None, metrics)
    }

    /// Whether a current key is configured.
    pub fn enabled(&self) -> bool {
        self.current.is_some()
    }

    /// Seal `plaintext` under the current key, binding `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = self.current.as_ref().ok_or(CryptoError::NotConfigured)?;
        if plaintext.len() > MAX_PLAINTEXT_BYTES || aad.len() > MAX_PLAINTEXT_BYTES {
            return Err(CryptoError::TooLarge);
        }
        let mut nonce = [0u8; NONCE_LEN];
        if getrandom::fill(&mut nonce).is_err() {
            // No OS randomness: refuse rather than risk a repeated nonce. The guest treats this
            // like any other crypto failure (persistence skipped with a notice).
            tracing::error!("the OS random source failed; artifact not sealed");
            return Err(CryptoError::NotConfigured);
        }
        let sealed = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::TooLarge)?;
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.push(RECORD_VERSION);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        self.metrics.incr("artifact_seals", key.label);
        Ok(out)
    }

    /// Open a record made by [`seal`](Self::seal) under the current or the previous key.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if self.current.is_none() && self.previous.is_none() {
            return Err(CryptoError::NotConfigured);
        }
        if sealed.len() > MAX_PLAINTEXT_BYTES + HEADER_LEN + TAG_LEN
            || aad.len() > MAX_PLAINTEXT_BYTES
        {
            return Err(CryptoError::TooLarge);
        }
        if sealed.len() < HEADER_LEN + TAG_LEN || sealed[0] != RECORD_VERSION {
            return Err(CryptoError::InvalidRecord);
        }
        let id = &sealed[1..1 + KEY_ID_LEN];
        let key = [self.current.as_ref(), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id == id)
            .ok_or(CryptoError::UnknownKey)?;
        let nonce = Nonce::from_slice(&sealed[1 + KEY_ID_LEN..HEADER_LEN]);
        key.cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed[HEADER_LEN..],
                    aad,
                },
            )
            .map_err(|_| CryptoError::InvalidRecord)
    }
}

/// The per-instance view the guest's `crypto` calls land on.
pub struct CryptoView {
    pub keys: Arc<ArtifactCrypto>,
}

impl crypto::Host for CryptoView {
    async fn enabled(&mut self) -> bool {
        self.keys.enabled()
    }
    async fn seal(
        &mut self,
        aad: Vec<u8>,
        plaintext: Vec<u8>,
    ) -> Result<Vec<u8>, crypto::CryptoError> {
        self.keys.seal(&aad, &plaintext).map_err(Into::into)
    }
    async fn open(
        &mut self,
        aad: Vec<u8>,
        sealed: Vec<u8>,
    ) -> Result<Vec<u8>, crypto::CryptoError> {
        self.keys.open(&aad, &sealed).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn keys(current: Option<&str>, previous: Option<&str>) -> ArtifactCrypto {
        let c = current.map(|s| SecretString::from(s.to_owned()));
        let p = previous.map(|s| SecretString::from(s.to_owned()));
        ArtifactCrypto::new(c.as_ref(), p.as_ref(), Arc::new(Metrics::default()))
    }

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    struct Kat {
        key: &'static str,
        iv: &'static str,
        pt: &'static str,
        aad: &'static str,
        ct: &'static str,
        tag: &'static str,
    }

    /// AES-256 test cases 13–16 of McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)"
    /// (the GCM submission to NIST), and one NIST CAVP `gcmEncryptExtIV256.rsp` vector
    /// (PTlen=128, AADlen=128, Count=0).
    const KATS: &[Kat] = &[
        Kat {
            key: "0000000000000000000000000000000000000000000000000000000000000000",
            iv: "000000000000000000000000",
            pt: "",
            aad: "",
            ct: "",
            tag: "530f8afbc74536b9a963b4f1c4cb738b",
        },
        Kat {
            key: "0000000000000000000000000000000000000000000000000000000000000000",
            iv: "000000000000000000000000",
            pt: "00000000000000000000000000000000",
            aad: "",
            ct: "cea7403d4d606b6e074ec5d3baf39d18",
            tag: "d0d1c8a799996bf0265b98b5d48ab919",
        },
        Kat {
            key: "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            iv: "cafebabefacedbaddecaf888",
            pt: "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
            aad: "",
            ct: "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
            tag: "b094dac5d93471bdec1a502270e3cc6c",
        },
        Kat {
            key: "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            iv: "cafebabefacedbaddecaf888",
            pt: "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
            aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            ct: "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            tag: "76fc6ece0f4e1768cddf8853bb2d551b",
        },
        Kat {
            key: "92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b",
            iv: "ac93a1a6145299bde902f21a",
            pt: "2d71bcfa914e4ac045b2aa60955fad24",
            aad: "1e0889016f67601c8ebea4943bc23ad6",
            ct: "8995ae2e6df3dbf96fac7b7137bae67f",
            tag: "eca5aa77d51d4a0a14d9c51e1da474ab",
        },
    ];

    #[test]
    fn the_cipher_matches_published_aes_256_gcm_vectors() {
        for (i, v) in KATS.iter().enumerate() {
            let cipher = Aes256Gcm::new_from_slice(&h(v.key)).unwrap();
            let (pt, aad) = (h(v.pt), h(v.aad));
            let out = cipher
                .encrypt(
                    Nonce::from_slice(&h(v.iv)),
                    Payload {
                        msg: &pt,
                        aad: &aad,
                    },
                )
                .unwrap();
            let mut want = h(v.ct);
            want.extend(h(v.tag));
            assert_eq!(hex::encode(&out), hex::encode(&want), "vector {i}");
            let back = cipher
                .decrypt(
                    Nonce::from_slice(&h(v.iv)),
                    Payload {
                        msg: &want,
                        aad: &aad,
                    },
                )
                .unwrap();
            assert_eq!(back, pt, "vector {i}");
        }
    }

    #[test]
    fn a_record_carries_version_key_id_and_nonce_and_opens_with_its_aad() {
        let k = keys(Some("a long artifact key, 32+ characters"), None);
        let sealed = k.seal(b"row-1", b"hello").unwrap();
        assert_eq!(sealed.len(), HEADER_LEN + 5 + TAG_LEN);
        assert_eq!(sealed[0], RECORD_VERSION);
        assert_eq!(&sealed[1..5], &k.current.as_ref().unwrap().id);
        assert_eq!(k.open(b"row-1", &sealed).unwrap(), b"hello");
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
    }

    #[test]
    fn every_single_byte_flip_is_a_typed_error() {
        let k = keys(Some("flip-key"), None);
        let sealed = k.seal(b"aad", b"some plaintext worth protecting").unwrap();
        for i in 0..sealed.len() {
            for bit in [0x01u8, 0x80, 0xff] {
                let mut bad = sealed.clone();
                bad[i] ^= bit;
                let err = k.open(b"aad", &bad).unwrap_err();
                let expected = if (1..5).contains(&i) {
                    CryptoError::UnknownKey
                } else {
                    CryptoError::InvalidRecord
                };
                assert_eq!(err, expected, "byte {i} flipped with {bit:#x}");
            }
        }
        // Truncated and empty records too.
        for len in 0..sealed.len() {
            assert!(
                k.open(b"aad", &sealed[..len]).is_err(),
                "truncated to {len}"
            );
        }
    }

    #[test]
    fn a_wrong_key_or_another_aad_fails() {
        let a = keys(Some("key-a"), None);
        let sealed = a.seal(b"table/row-1/chat-1/reasoning", b"secret").unwrap();
        assert_eq!(
            a.open(b"table/row-2/chat-1/reasoning", &sealed),
            Err(CryptoError::InvalidRecord)
        );
        let b = keys(Some("key-b"), None);
        assert_eq!(
            b.open(b"table/row-1/chat-1/reasoning", &sealed),
            Err(CryptoError::UnknownKey)
        );
        // A wrong key that claims the right key id (forged header) still fails authentication.
        let mut forged = b.seal(b"table/row-1/chat-1/reasoning", b"x").unwrap();
        forged[1..5].copy_from_slice(&sealed[1..5]);
        assert_eq!(
            a.open(b"table/row-1/chat-1/reasoning", &forged),
            Err(CryptoError::InvalidRecord)
        );
    }

    #[test]
    fn no_key_means_not_configured_and_caps_are_typed() {
        let none = keys(None, None);
        assert!(!none.enabled());
        assert_eq!(none.seal(b"", b"x"), Err(CryptoError::NotConfigured));
        assert_eq!(none.open(b"", &[0u8; 40]), Err(CryptoError::NotConfigured));
        let k = keys(Some("k"), None);
        let big = vec![0u8; MAX_PLAINTEXT_BYTES + 1];
        assert_eq!(k.seal(b"", &big), Err(CryptoError::TooLarge));
    }

    #[test]
    fn a_hundred_thousand_seals_use_distinct_nonces_and_ciphertexts() {
        let k = keys(Some("nonce-key"), None);
        let mut nonces = HashSet::new();
        let mut cts = HashSet::new();
        for _ in 0..100_000 {
            let s = k.seal(b"same", b"same plaintext").unwrap();
            assert!(nonces.insert(s[5..HEADER_LEN].to_vec()));
            assert!(cts.insert(s[HEADER_LEN..].to_vec()));
        }
        let label = k.current.as_ref().unwrap().label;
        assert_eq!(k.metrics.get("artifact_seals", label), 100_000);
    }

    #[test]
    fn rotation_keeps_old_records_readable_and_seals_with_the_new_key() {
        let a = keys(Some("key-A"), None);
        let old = a.seal(b"row", b"old").unwrap();
        let rotated = keys(Some("key-B"), Some("key-A"));
        assert_eq!(rotated.open(b"row", &old).unwrap(), b"old");
        let new = rotated.seal(b"row", b"new").unwrap();
        assert_ne!(new[1..5], old[1..5]);
        assert_eq!(&new[1..5], &keys(Some("key-B"), None).current.unwrap().id);
        let dropped = keys(Some("key-B"), None);
        assert_eq!(dropped.open(b"row", &old), Err(CryptoError::UnknownKey));
        assert_eq!(dropped.open(b"row", &new).unwrap(), b"new");
        // A previous key alone still reads, but does not seal.
        let read_only = keys(None, Some("key-A"));
        assert!(!read_only.enabled());
        assert_eq!(read_only.open(b"row", &old).unwrap(), b"old");
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let k = keys(Some("super-secret-key-value"), Some("older-secret"));
        let text = format!("{k:?}");
        assert!(!text.contains("secret"), "{text}");
        assert!(!text.contains(&hex::encode(k.current.as_ref().unwrap().id)));
    }
}
