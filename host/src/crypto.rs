//! The `crypto` capability: artifact encryption with keys only the host holds. Until the
//! persistence work lands, no key is used: `enabled` answers false and every seal/open answers
//! the typed `not-configured` error (never a trap).

use crate::bindings::crypto::{self, CryptoError};

/// The per-instance view the guest's `crypto` calls land on.
pub struct CryptoView;

impl crypto::Host for CryptoView {
    async fn enabled(&mut self) -> bool {
        false
    }
    async fn seal(&mut self, _aad: Vec<u8>, _plaintext: Vec<u8>) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError::NotConfigured)
    }
    async fn open(&mut self, _aad: Vec<u8>, _sealed: Vec<u8>) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError::NotConfigured)
    }
}
