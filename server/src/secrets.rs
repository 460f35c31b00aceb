//! Sealing secrets kept at rest (IdP refresh tokens) with ChaCha20-Poly1305 under Pangea's
//! secret key: `PANGEA_SECRET_KEY` (base64 of 32 bytes; give every HA replica the same one), or
//! else `<data dir>/secret.key`, made on first start, readable by its owner only.

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
    #[error("PANGEA_SECRET_KEY must be base64 of exactly 32 bytes (e.g. from `head -c 32 /dev/urandom | base64`)")]
    Malformed,
    #[error("cannot read or create the secret key file {0}: {1}")]
    File(std::path::PathBuf, std::io::Error),
}

fn decode(text: &str) -> Result<[u8; 32], KeyError> {
    STANDARD.decode(text.trim()).ok().and_then(|b| b.try_into().ok()).ok_or(KeyError::Malformed)
}

impl Sealer {
    pub fn from_key(key: [u8; 32]) -> Sealer {
        Sealer { cipher: ChaCha20Poly1305::new(Key::from_slice(&key)) }
    }

    /// The configured key, or the data directory's key file (created when missing).
    pub fn load(configured: Option<&SecretString>, data_dir: &Path) -> Result<Sealer, KeyError> {
        if let Some(key) = configured {
            return decode(key.expose_secret()).map(Sealer::from_key);
        }
        let path = data_dir.join("secret.key");
        match std::fs::read_to_string(&path) {
            Ok(text) => decode(&text).map(Sealer::from_key),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::rng().random();
                std::fs::create_dir_all(data_dir).map_err(|e| KeyError::File(path.clone(), e))?;
                write_private(&path, &STANDARD.encode(key)).map_err(|e| KeyError::File(path.clone(), e))?;
                Ok(Sealer::from_key(key))
            }
            Err(e) => Err(KeyError::File(path, e)),
        }
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
}
