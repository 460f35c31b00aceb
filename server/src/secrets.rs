//! Pangea's keys, none of which is ever in the database:
//! - the secret key seals secrets kept at rest (IdP refresh tokens) with ChaCha20-Poly1305:
//!   `PANGEA_SECRET_KEY` (base64 of 32 bytes; give every HA replica the same one), or else
//!   `<data dir>/secret.key`, made on first start, readable by its owner only;
//! - the audit chain key ([`ChainKey`]) keys the audit log's HMAC chain: `PANGEA_AUDIT_KEY`, or
//!   else derived from the secret key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use std::path::Path;

pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "PANGEA_SECRET_KEY and PANGEA_AUDIT_KEY must be base64 of exactly 32 bytes (e.g. from `head -c 32 /dev/urandom | base64`)"
    )]
    Malformed,
    #[error("cannot read or create the secret key file {0}: {1}")]
    File(std::path::PathBuf, std::io::Error),
}

fn decode(text: &str) -> Result<[u8; 32], KeyError> {
    STANDARD.decode(text.trim()).ok().and_then(|b| b.try_into().ok()).ok_or(KeyError::Malformed)
}

/// The configured secret key, or the data directory's key file (created when missing).
pub fn load_secret_key(configured: Option<&SecretString>, data_dir: &Path) -> Result<[u8; 32], KeyError> {
    if let Some(key) = configured {
        return decode(key.expose_secret());
    }
    let path = data_dir.join("secret.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => decode(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::rng().random();
            std::fs::create_dir_all(data_dir).map_err(|e| KeyError::File(path.clone(), e))?;
            write_private(&path, &STANDARD.encode(key)).map_err(|e| KeyError::File(path.clone(), e))?;
            Ok(key)
        }
        Err(e) => Err(KeyError::File(path, e)),
    }
}

/// The key of the audit log's HMAC chain. Without it, nobody can write a record (or rewrite
/// the chain) that `pangea audit verify` accepts, even with full write access to the database.
#[derive(Clone)]
pub struct ChainKey([u8; 32]);

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(..)")
    }
}

impl ChainKey {
    pub fn from_bytes(key: [u8; 32]) -> ChainKey {
        ChainKey(key)
    }

    /// `PANGEA_AUDIT_KEY` when given (base64 of 32 bytes), else one derived from the secret key.
    pub fn load(configured: Option<&SecretString>, secret_key: &[u8; 32]) -> Result<ChainKey, KeyError> {
        match configured {
            Some(key) => decode(key.expose_secret()).map(ChainKey),
            None => Ok(ChainKey(hmac_sha256(secret_key, b"pangea audit chain v1"))),
        }
    }

    /// HMAC-SHA256 of `message` under this key.
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.0, message)
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Both keys, as `pangea serve` and the CLI load them.
pub fn load_keys(
    secret_key: Option<&SecretString>,
    audit_key: Option<&SecretString>,
    data_dir: &Path,
) -> Result<(Sealer, ChainKey), KeyError> {
    let secret = load_secret_key(secret_key, data_dir)?;
    Ok((Sealer::from_key(secret), ChainKey::load(audit_key, &secret)?))
}

impl Sealer {
    pub fn from_key(key: [u8; 32]) -> Sealer {
        Sealer { cipher: ChaCha20Poly1305::new(Key::from_slice(&key)) }
    }

    /// The configured key, or the data directory's key file (created when missing).
    pub fn load(configured: Option<&SecretString>, data_dir: &Path) -> Result<Sealer, KeyError> {
        load_secret_key(configured, data_dir).map(Sealer::from_key)
    }

    /// `base64(nonce ‖ ciphertext)`.
    pub fn seal(&self, secret: &SecretString) -> String {
        let nonce: [u8; 12] = rand::rng().random();
        let sealed =
            self.cipher.encrypt(Nonce::from_slice(&nonce), secret.expose_secret().as_bytes()).unwrap_or_default();
        STANDARD.encode([nonce.as_slice(), &sealed].concat())
    }

    /// `None` when the text was not sealed with this key (or was changed).
    pub fn open(&self, sealed: &str) -> Option<SecretString> {
        let bytes = STANDARD.decode(sealed).ok()?;
        let (nonce, ciphertext) = bytes.split_at_checked(12)?;
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), ciphertext).ok()?;
        String::from_utf8(plain).ok().map(SecretString::from)
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_the_same_key_and_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::load(None, dir.path()).unwrap();
        let sealed = sealer.seal(&SecretString::from("refresh-me"));
        assert!(!sealed.contains("refresh-me"));
        assert_eq!(sealer.open(&sealed).unwrap().expose_secret(), "refresh-me");
        let again = Sealer::load(None, dir.path()).unwrap();
        assert_eq!(again.open(&sealed).unwrap().expose_secret(), "refresh-me", "the key file is reused");
        let other = Sealer::from_key([7; 32]);
        assert!(other.open(&sealed).is_none());
        let mut tampered = STANDARD.decode(&sealed).unwrap();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&STANDARD.encode(tampered)).is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secret.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(Sealer::load(Some(&SecretString::from("short")), dir.path()).is_err());
    }

    #[test]
    fn the_chain_key_is_derived_from_the_secret_key_unless_given() {
        let a = ChainKey::load(None, &[1; 32]).unwrap();
        let b = ChainKey::load(None, &[2; 32]).unwrap();
        assert_ne!(a.mac(b"x"), b.mac(b"x"));
        let given = SecretString::from(STANDARD.encode([9u8; 32]));
        assert_eq!(ChainKey::load(Some(&given), &[1; 32]).unwrap().mac(b"x"), ChainKey::from_bytes([9; 32]).mac(b"x"));
        // RFC 4231, test case 2: HMAC-SHA256 with key "Jefe".
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(!format!("{a:?}").contains('1'));
    }
}
