//! Row payload encoding: compact JSON, LZ4 when it pays, sealed by the host when a key is set.
//!
//! Layout of a stored payload:
//! `header (1 byte: 0 plain, 1 sealed) ‖ body` where for a sealed row `body` is the host's crypto
//! record (version ‖ key id ‖ nonce ‖ ciphertext ‖ tag) whose plaintext is the inner body, and the
//! inner body is `flag (1 byte: 0 JSON, 1 LZ4 block with its size prepended) ‖ data`.
//!
//! LZ4 (`lz4_flex`) is used only when `ENABLE_LZ4_COMPRESSION` is on, the JSON is at least
//! `MIN_COMPRESS_BYTES` long and the compressed form is actually shorter.
//! A row is sealed when the host has a key and `ENCRYPT_ALL` is on or the item is reasoning.
//! The associated data binds the row's identity (table, id, chat id, item type, owner), so a
//! sealed payload copied onto another row, or onto another owner's row, does not open. Rows
//! written before owners were recorded have an empty owner and keep the older associated data
//! (without the owner field), so a key rotation can still move them; they are never replayed.

use super::ArtifactSettings;
use crate::caps::{Crypto, CryptoError};
use serde_json::Value;

const HEADER_PLAIN: u8 = 0;
const HEADER_SEALED: u8 = 1;
const FLAG_JSON: u8 = 0;
const FLAG_LZ4: u8 = 1;
/// Largest decoded JSON accepted (a decompression bomb in a tampered plain row stops here).
/// Reasoning items are tens of KiB; 16 MiB is far above any artifact we write.
pub const MAX_DECODED_BYTES: usize = 16 << 20;
const AAD_LABEL: &[u8] = b"responses-pipe/artifact/v1";
/// Associated data of rows that carry an owner.
const AAD_LABEL_OWNED: &[u8] = b"responses-pipe/artifact/v2";

/// Why a payload could not be made or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    #[error("the payload is malformed: {0}")]
    Malformed(&'static str),
    #[error("the payload is sealed but no artifact key is configured")]
    KeyMissing,
}

/// The identity a sealed payload is bound to.
#[derive(Clone, Copy, Debug)]
pub struct Identity<'a> {
    pub table: &'a str,
    pub id: &'a str,
    pub chat_id: &'a str,
    pub item_type: &'a str,
    /// The row's owner (digest of the principal); empty for rows written before owners were
    /// recorded.
    pub owner: &'a str,
}

impl Identity<'_> {
    /// Length-prefixed fields, so no choice of values can make two identities collide. The label
    /// says whether the owner is bound (v2) or the row predates owners (v1, no owner field).
    pub fn aad(&self) -> Vec<u8> {
        let label = if self.owner.is_empty() {
            AAD_LABEL
        } else {
            AAD_LABEL_OWNED
        };
        let mut out = label.to_vec();
        let owner = (!self.owner.is_empty()).then_some(self.owner);
        for field in [self.table, self.id, self.chat_id, self.item_type]
            .into_iter()
            .chain(owner)
        {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }
}

/// Whether a row of this type is sealed under these settings.
pub fn should_seal(settings: &ArtifactSettings, crypto: &dyn Crypto, item_type: &str) -> bool {
    crypto.enabled() && (settings.encrypt_all || item_type == "reasoning")
}

/// The inner body: JSON, or LZ4 of it when that is allowed and shorter.
fn inner(settings: &ArtifactSettings, json: Vec<u8>) -> Vec<u8> {
    if settings.enable_lz4_compression && json.len() as u64 >= settings.min_compress_bytes {
        let packed = lz4_flex::compress_prepend_size(&json);
        if packed.len() < json.len() {
            let mut out = Vec::with_capacity(packed.len() + 1);
            out.push(FLAG_LZ4);
            out.extend(packed);
            return out;
        }
    }
    let mut out = Vec::with_capacity(json.len() + 1);
    out.push(FLAG_JSON);
    out.extend(json);
    out
}

/// Encode one item for storage.
pub fn encode(
    settings: &ArtifactSettings,
    crypto: &dyn Crypto,
    identity: &Identity<'_>,
    item: &Value,
) -> Result<Vec<u8>, CodecError> {
    let json =
        serde_json::to_vec(item).map_err(|_| CodecError::Malformed("unserialisable item"))?;
    let body = inner(settings, json);
    if should_seal(settings, crypto, identity.item_type) {
        let sealed = crypto.seal(&identity.aad(), &body)?;
        let mut out = Vec::with_capacity(sealed.len() + 1);
        out.push(HEADER_SEALED);
        out.extend(sealed);
        Ok(out)
    } else {
        let mut out = Vec::with_capacity(body.len() + 1);
        out.push(HEADER_PLAIN);
        out.extend(body);
        Ok(out)
    }
}

/// Decode a stored payload back into its item.
pub fn decode(
    crypto: &dyn Crypto,
    identity: &Identity<'_>,
    payload: &[u8],
) -> Result<Value, CodecError> {
    let (&header, rest) = payload
        .split_first()
        .ok_or(CodecError::Malformed("empty payload"))?;
    let opened;
    let body = match header {
        HEADER_PLAIN => rest,
        HEADER_SEALED => {
            opened = crypto.open(&identity.aad(), rest).map_err(|e| match e {
                CryptoError::NotConfigured => CodecError::KeyMissing,
                other => CodecError::Crypto(other),
            })?;
            opened.as_slice()
        }
        _ => return Err(CodecError::Malformed("unknown header")),
    };
    let (&flag, data) = body
        .split_first()
        .ok_or(CodecError::Malformed("empty body"))?;
    let unpacked;
    let json = match flag {
        FLAG_JSON => data,
        FLAG_LZ4 => {
            let size = data
                .get(..4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_le_bytes)
                .ok_or(CodecError::Malformed("short lz4 block"))?;
            if size as usize > MAX_DECODED_BYTES {
                return Err(CodecError::Malformed("decoded size above the cap"));
            }
            unpacked = lz4_flex::decompress_size_prepended(data)
                .map_err(|_| CodecError::Malformed("bad lz4 block"))?;
            unpacked.as_slice()
        }
        _ => return Err(CodecError::Malformed("unknown body flag")),
    };
    serde_json::from_slice(json).map_err(|_| CodecError::Malformed("not JSON"))
}

/// Whether a stored payload is sealed (for tests and diagnostics).
pub fn is_sealed(payload: &[u8]) -> bool {
    payload.first() == Some(&HEADER_SEALED)
}

/// Whether the (plain) payload is LZ4-compressed; `None` for a sealed payload.
pub fn is_compressed(payload: &[u8]) -> Option<bool> {
    match payload {
        [HEADER_PLAIN, flag, ..] => Some(*flag == FLAG_LZ4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{MemCrypto, NoCrypto};
    use serde_json::json;

    fn id<'a>(row: &'a str, item_type: &'a str) -> Identity<'a> {
        Identity {
            table: "t",
            id: row,
            chat_id: "chat",
            item_type,
            owner: "owner-a",
        }
    }

    fn big_item() -> Value {
        json!({"type": "reasoning", "id": "rs_1", "encrypted_content": "A".repeat(2000)})
    }

    #[test]
    fn plain_rows_round_trip_and_compress_only_when_it_pays() {
        let s = ArtifactSettings::default();
        let item = big_item();
        let payload = encode(&s, &NoCrypto, &id("r", "reasoning"), &item).unwrap();
        assert!(!is_sealed(&payload));
        assert_eq!(is_compressed(&payload), Some(true));
        assert!(payload.len() < 500);
        assert_eq!(
            decode(&NoCrypto, &id("r", "reasoning"), &payload).unwrap(),
            item
        );
        // A short, incompressible item stays JSON.
        let small = json!({"type": "function_call_output", "call_id": "c", "output": "x7Q"});
        let payload = encode(&s, &NoCrypto, &id("r", "function_call_output"), &small).unwrap();
        assert_eq!(is_compressed(&payload), Some(false));
        assert_eq!(
            decode(&NoCrypto, &id("r", "function_call_output"), &payload).unwrap(),
            small
        );
    }

    #[test]
    fn the_threshold_and_the_switch_turn_compression_off() {
        let item = big_item();
        let len = serde_json::to_vec(&item).unwrap().len() as u64;
        let mut s = ArtifactSettings {
            min_compress_bytes: len + 1,
            ..ArtifactSettings::default()
        };
        let p = encode(&s, &NoCrypto, &id("r", "reasoning"), &item).unwrap();
        assert_eq!(is_compressed(&p), Some(false));
        s.min_compress_bytes = len;
        let p = encode(&s, &NoCrypto, &id("r", "reasoning"), &item).unwrap();
        assert_eq!(is_compressed(&p), Some(true));
        s.enable_lz4_compression = false;
        let p = encode(&s, &NoCrypto, &id("r", "reasoning"), &item).unwrap();
        assert_eq!(is_compressed(&p), Some(false));
    }

    #[test]
    fn encrypt_all_decides_which_types_are_sealed() {
        let crypto = MemCrypto::default();
        let mut s = ArtifactSettings::default();
        let call = json!({"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"});
        for (encrypt_all, item_type, sealed) in [
            (true, "reasoning", true),
            (true, "function_call", true),
            (false, "reasoning", true),
            (false, "function_call", false),
        ] {
            s.encrypt_all = encrypt_all;
            let p = encode(&s, &crypto, &id("r", item_type), &call).unwrap();
            assert_eq!(is_sealed(&p), sealed, "{encrypt_all} {item_type}");
            assert_eq!(decode(&crypto, &id("r", item_type), &p).unwrap(), call);
        }
        // Without a key nothing is sealed.
        s.encrypt_all = true;
        let p = encode(&s, &NoCrypto, &id("r", "reasoning"), &call).unwrap();
        assert!(!is_sealed(&p));
    }

    #[test]
    fn a_sealed_payload_moved_to_another_row_or_altered_does_not_open() {
        let crypto = MemCrypto::default();
        let s = ArtifactSettings::default();
        let item = big_item();
        let p = encode(&s, &crypto, &id("row-1", "reasoning"), &item).unwrap();
        assert!(is_sealed(&p));
        let text = String::from_utf8_lossy(&p);
        assert!(!text.contains("encrypted_content"));
        assert_eq!(
            decode(&crypto, &id("row-2", "reasoning"), &p),
            Err(CodecError::Crypto(CryptoError::InvalidRecord))
        );
        let other_chat = Identity {
            chat_id: "other",
            ..id("row-1", "reasoning")
        };
        assert!(decode(&crypto, &other_chat, &p).is_err());
        let other_owner = Identity {
            owner: "owner-b",
            ..id("row-1", "reasoning")
        };
        assert!(decode(&crypto, &other_owner, &p).is_err());
        let mut bad = p.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(decode(&crypto, &id("row-1", "reasoning"), &bad).is_err());
        assert_eq!(
            decode(&NoCrypto, &id("row-1", "reasoning"), &p),
            Err(CodecError::KeyMissing)
        );
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for p in [
            vec![],
            vec![0],
            vec![7, 0],
            vec![0, 9, 1],
            vec![0, 1, 255, 255, 255, 255, 0],
            vec![0, 1, 1],
            vec![0, 0, b'{'],
        ] {
            assert!(
                matches!(
                    decode(&NoCrypto, &id("r", "x"), &p),
                    Err(CodecError::Malformed(_))
                ),
                "{p:?}"
            );
        }
    }

    #[test]
    fn the_aad_cannot_be_shifted_between_fields() {
        let a = Identity {
            table: "t",
            id: "ab",
            chat_id: "c",
            item_type: "x",
            owner: "o",
        };
        let b = Identity {
            table: "t",
            id: "a",
            chat_id: "bc",
            item_type: "x",
            owner: "o",
        };
        assert_ne!(a.aad(), b.aad());
        // An owner can neither be dropped nor shifted into the item type.
        let legacy = Identity { owner: "", ..a };
        assert_ne!(a.aad(), legacy.aad());
        let shifted = Identity {
            item_type: "xo",
            owner: "",
            ..a
        };
        assert_ne!(a.aad(), shifted.aad());
    }

    #[test]
    fn a_row_without_an_owner_keeps_the_associated_data_it_was_sealed_with() {
        // Exactly the bytes rows were sealed with before owners were recorded.
        let legacy = Identity {
            table: "t",
            id: "r",
            chat_id: "c",
            item_type: "reasoning",
            owner: "",
        };
        let mut expected = b"responses-pipe/artifact/v1".to_vec();
        for f in ["t", "r", "c", "reasoning"] {
            expected.extend_from_slice(&(f.len() as u32).to_be_bytes());
            expected.extend_from_slice(f.as_bytes());
        }
        assert_eq!(legacy.aad(), expected);
    }
}
