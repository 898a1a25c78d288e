//! `server.tls`: the certificate and private key the gateway serves HTTPS with.
//!
//! Invariants:
//! - Both files are read through the configuration's read log (`sources.rs`), so a rotated
//!   certificate is a configuration change (picked up by the reload within 10 s, or at once
//!   on a file event or SIGHUP) and the key in force is exactly the bytes that were parsed.
//! - A [`TlsConfig`] only exists for a chain and key that parse and belong together: a
//!   missing, unreadable or malformed file, or a key that is not the certificate's, is a
//!   configuration error at load, so a bad edit is refused by the reload and the running
//!   certificate stays.
//! - No message, `Debug` output or log ever holds key material: errors name the field,
//!   the path and what is wrong, in fixed words (the PEM parser's own messages can quote
//!   a line of the file, so they are never passed on).

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Keys of `server.tls`.
pub(crate) const TLS_KEYS: &[&str] = &["cert", "key"];

/// The crypto provider the gateway uses (`ring`: it builds with a C compiler alone). Passed
/// explicitly everywhere, so nothing depends on a process-wide default.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `server.tls`: serve HTTPS on `server.listen` with this certificate.
#[derive(Clone)]
pub struct TlsConfig {
    /// The certificate chain file (PEM, leaf first), joined to the manifest's directory.
    pub cert: PathBuf,
    /// The private key file (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC), joined to the manifest's
    /// directory.
    pub key: PathBuf,
    /// The parsed chain and signing key, checked to belong together.
    pub certified: Arc<CertifiedKey>,
    /// A hash of both files' bytes: a rotated certificate at the same paths is a change.
    fingerprint: u64,
}

impl TlsConfig {
    /// Parses `cert_pem` and `key_pem` (the contents of `cert` and `key`) and checks that
    /// the key is the certificate's.
    pub fn from_pem(
        cert: PathBuf,
        cert_pem: &[u8],
        key: PathBuf,
        key_pem: &[u8],
    ) -> Result<TlsConfig, TlsError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TlsError::CertPem)?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        let private = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey,
            _ => TlsError::KeyPem,
        })?;
        let certified =
            CertifiedKey::from_der(chain, private, &provider()).map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => TlsError::Mismatch,
                _ => TlsError::UnusableKey,
            })?;
        let mut hasher = DefaultHasher::new();
        (cert_pem, key_pem).hash(&mut hasher);
        Ok(TlsConfig {
            cert,
            key,
            certified: Arc::new(certified),
            fingerprint: hasher.finish(),
        })
    }
}

// Paths only: the key's bytes are never formatted.
impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl PartialEq for TlsConfig {
    fn eq(&self, other: &Self) -> bool {
        self.cert == other.cert && self.key == other.key && self.fingerprint == other.fingerprint
    }
}

impl Eq for TlsConfig {}

/// Why the certificate and key cannot be used. The texts are fixed (no byte of either
/// file is quoted); the caller adds the field and the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is not well-formed PEM.
    #[error("is not a well-formed PEM file")]
    CertPem,
    /// The certificate file holds no certificate.
    #[error("holds no certificate (a `-----BEGIN CERTIFICATE-----` section)")]
    NoCertificate,
    /// The key file is not well-formed PEM.
    #[error("is not a well-formed PEM file")]
    KeyPem,
    /// The key file holds no private key.
    #[error(
        "holds no private key (a `-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` section)"
    )]
    NoKey,
    /// The key is of a kind the TLS library cannot sign with.
    #[error(
        "holds a private key of a kind that cannot be used (use RSA, ECDSA P-256/P-384 or Ed25519)"
    )]
    UnusableKey,
    /// The key does not belong to the certificate.
    #[error("is not the private key of the certificate in `cert` (they do not match)")]
    Mismatch,
}

impl TlsError {
    /// The field the problem is in.
    pub fn field(self) -> &'static str {
        match self {
            TlsError::CertPem | TlsError::NoCertificate => "cert",
            TlsError::KeyPem | TlsError::NoKey | TlsError::UnusableKey | TlsError::Mismatch => {
                "key"
            }
        }
    }
}
