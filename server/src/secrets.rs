//! Pangea's keys, none of which is ever in the database:
//! - the secret keys seal secrets kept at rest (cluster and source credentials, IdP refresh
//!   tokens) with ChaCha20-Poly1305: `PANGEA_SECRET_KEY` (base64 of 32 bytes, or several
//!   separated by commas; give every HA replica the same), or else `<data dir>/secret.key` (one
//!   per line), made on first start, readable by its owner only. The first key seals; each
//!   sealed value names the key that sealed it (its key id) and is bound to its place (its row
//!   and destination, as associated data), so a ciphertext copied elsewhere cannot be opened.
//!   `pangea keys rotate` puts a new key first and re-seals everything under it;
//! - the audit chain key ([`ChainKey`]) keys the audit log's HMAC chain: `PANGEA_AUDIT_KEY`, or
//!   else derived from the last (oldest) secret key, which rotation therefore keeps.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use std::path::Path;

/// The keys that open sealed values, the first of which seals.
pub struct Sealer {
    keys: std::sync::RwLock<Vec<(String, ChaCha20Poly1305)>>,
    /// The key file they came from, read again when a value names a key not yet known (after
    /// `pangea keys rotate` beside a running server); `None` when they came from the environment.
    file: Option<std::path::PathBuf>,
}

fn ring(keys: &[[u8; 32]]) -> Vec<(String, ChaCha20Poly1305)> {
    keys.iter().map(|k| (key_id(k), ChaCha20Poly1305::new(Key::from_slice(k)))).collect()
}

/// What sealed values start with: a version, then the key id.
const SEALED_PREFIX: &str = "pk1.";

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

/// Keys separated by commas or lines, first the one that seals.
fn decode_ring(text: &str) -> Result<Vec<[u8; 32]>, KeyError> {
    let keys: Vec<[u8; 32]> =
        text.split([',', '\n']).filter(|k| !k.trim().is_empty()).map(decode).collect::<Result<_, _>>()?;
    if keys.is_empty() { Err(KeyError::Malformed) } else { Ok(keys) }
}

/// Where the secret keys live when PANGEA_SECRET_KEY is not set.
pub fn key_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("secret.key")
}

/// The configured secret keys, or the data directory's key file (created when missing).
pub fn load_secret_keys(configured: Option<&SecretString>, data_dir: &Path) -> Result<Vec<[u8; 32]>, KeyError> {
    if let Some(keys) = configured {
        return decode_ring(keys.expose_secret());
    }
    let path = key_file(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => decode_ring(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::rng().random();
            std::fs::create_dir_all(data_dir).map_err(|e| KeyError::File(path.clone(), e))?;
            write_private(&path, &STANDARD.encode(key)).map_err(|e| KeyError::File(path.clone(), e))?;
            Ok(vec![key])
        }
        Err(e) => Err(KeyError::File(path, e)),
    }
}

/// Writes a key ring to the key file, whole or not at all (through a file beside it).
pub fn write_key_file(data_dir: &Path, keys: &[[u8; 32]]) -> std::io::Result<()> {
    let path = key_file(data_dir);
    let staging = data_dir.join(format!("secret.key.{}", std::process::id()));
    let _ = std::fs::remove_file(&staging);
    let text: Vec<String> = keys.iter().map(|k| STANDARD.encode(k)).collect();
    write_private(&staging, &(text.join("\n") + "\n"))?;
    std::fs::File::open(&staging)?.sync_all()?;
    std::fs::rename(&staging, &path)
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

    /// `PANGEA_AUDIT_KEY` when given (base64 of 32 bytes), else one derived from the (oldest)
    /// secret key.
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
    let keys = load_secret_keys(secret_key, data_dir)?;
    let oldest = *keys.last().ok_or(KeyError::Malformed)?;
    let sealer = Sealer { file: secret_key.is_none().then(|| key_file(data_dir)), ..Sealer::from_keys(&keys) };
    Ok((sealer, ChainKey::load(audit_key, &oldest)?))
}

impl Sealer {
    pub fn from_key(key: [u8; 32]) -> Sealer {
        Sealer::from_keys(&[key])
    }

    /// A sealer that seals with the first key and opens with any.
    pub fn from_keys(keys: &[[u8; 32]]) -> Sealer {
        Sealer { keys: std::sync::RwLock::new(ring(keys)), file: None }
    }

    /// The configured keys, or the data directory's key file (created when missing).
    pub fn load(configured: Option<&SecretString>, data_dir: &Path) -> Result<Sealer, KeyError> {
        let keys = load_secret_keys(configured, data_dir)?;
        Ok(Sealer { file: configured.is_none().then(|| key_file(data_dir)), ..Sealer::from_keys(&keys) })
    }

    fn keys(&self) -> std::sync::RwLockReadGuard<'_, Vec<(String, ChaCha20Poly1305)>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The id of the key that seals.
    pub fn key_id(&self) -> String {
        self.keys().first().map_or(String::new(), |(id, _)| id.clone())
    }

    /// `pk1.<key id>.base64(nonce ‖ ciphertext)`, bound to `place` (its row and destination):
    /// it opens only with the same `place`.
    pub fn seal(&self, secret: &SecretString, place: &str) -> String {
        let keys = self.keys();
        let Some((id, cipher)) = keys.first() else { return String::new() };
        let nonce: [u8; 12] = rand::rng().random();
        let payload = Payload { msg: secret.expose_secret().as_bytes(), aad: place.as_bytes() };
        let sealed = cipher.encrypt(Nonce::from_slice(&nonce), payload).unwrap_or_default();
        format!("{SEALED_PREFIX}{id}.{}", STANDARD.encode([nonce.as_slice(), &sealed].concat()))
    }

    /// Why a sealed value does not open here: its key is not one of these, or it was changed or
    /// copied from another place.
    pub fn open(&self, sealed: &str, place: &str) -> Result<SecretString, SealError> {
        match self.open_with_known_keys(sealed, place) {
            Err(SealError::UnknownKey(_)) if self.reload() => self.open_with_known_keys(sealed, place),
            opened => opened,
        }
    }

    /// Reads the key file again; whether it gave keys.
    fn reload(&self) -> bool {
        let Some(keys) =
            self.file.as_ref().and_then(|f| std::fs::read_to_string(f).ok()).and_then(|t| decode_ring(&t).ok())
        else {
            return false;
        };
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = ring(&keys);
        true
    }

    fn open_with_known_keys(&self, sealed: &str, place: &str) -> Result<SecretString, SealError> {
        let keys = self.keys();
        let (cipher, text, aad) = match sealed.strip_prefix(SEALED_PREFIX).and_then(|rest| rest.split_once('.')) {
            Some((id, text)) => {
                let (_, cipher) =
                    keys.iter().find(|(k, _)| k == id).ok_or_else(|| SealError::UnknownKey(id.to_string()))?;
                (cipher, text, place.as_bytes())
            }
            // Sealed before values carried a key id and place: the sealing key, no place.
            // `pangea keys rotate` re-seals them in today's form.
            None => (&keys.first().ok_or(SealError::Damaged)?.1, sealed, &b""[..]),
        };
        let bytes = STANDARD.decode(text).map_err(|_| SealError::Damaged)?;
        let (nonce, ciphertext) = bytes.split_at_checked(12).ok_or(SealError::Damaged)?;
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad })
            .map_err(|_| SealError::Damaged)?;
        String::from_utf8(plain).map(SecretString::from).map_err(|_| SealError::Damaged)
    }
}

/// Why a sealed value did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("it was sealed with key {0}, which this server does not have (do all replicas share PANGEA_SECRET_KEY?)")]
    UnknownKey(String),
    #[error("it does not open with its key: it was changed, or copied from another row or address")]
    Damaged,
}

/// A key's public name: the first 8 hex digits of a hash of it.
fn key_id(key: &[u8; 32]) -> String {
    hex::encode(&hmac_sha256(key, b"pangea key id")[..4])
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
        let sealed = sealer.seal(&SecretString::from("refresh-me"), "session 1");
        assert!(!sealed.contains("refresh-me") && sealed.starts_with(&format!("pk1.{}.", sealer.key_id())));
        assert_eq!(sealer.open(&sealed, "session 1").unwrap().expose_secret(), "refresh-me");
        let again = Sealer::load(None, dir.path()).unwrap();
        assert_eq!(again.open(&sealed, "session 1").unwrap().expose_secret(), "refresh-me", "the key file is reused");
        // Bound to its place: copied to another row, it does not open.
        assert_eq!(sealer.open(&sealed, "session 2").unwrap_err(), SealError::Damaged);
        let other = Sealer::from_key([7; 32]);
        assert!(matches!(other.open(&sealed, "session 1"), Err(SealError::UnknownKey(_))));
        let (head, body) = sealed.rsplit_once('.').unwrap();
        let mut tampered = STANDARD.decode(body).unwrap();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&format!("{head}.{}", STANDARD.encode(tampered)), "session 1").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secret.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(Sealer::load(Some(&SecretString::from("short")), dir.path()).is_err());
    }

    #[test]
    fn a_key_ring_seals_with_its_first_key_and_opens_with_any() {
        let old = Sealer::from_key([1; 32]);
        let sealed_before = old.seal(&SecretString::from("s"), "p");
        let ring = Sealer::from_keys(&[[2; 32], [1; 32]]);
        assert_eq!(ring.open(&sealed_before, "p").unwrap().expose_secret(), "s");
        let sealed_now = ring.seal(&SecretString::from("s"), "p");
        assert!(sealed_now.starts_with(&format!("pk1.{}.", Sealer::from_key([2; 32]).key_id())));
        assert!(old.open(&sealed_now, "p").is_err());
        // Values sealed before key ids open with the sealing key, and only unchanged.
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&[2; 32]));
        let legacy =
            [[0u8; 12].as_slice(), &cipher.encrypt(Nonce::from_slice(&[0; 12]), b"s".as_slice()).unwrap()].concat();
        assert_eq!(ring.open(&STANDARD.encode(&legacy), "anything").unwrap().expose_secret(), "s");
        let env = SecretString::from(format!("{},{}", STANDARD.encode([2u8; 32]), STANDARD.encode([1u8; 32])));
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_secret_keys(Some(&env), dir.path()).unwrap(), vec![[2; 32], [1; 32]]);
        write_key_file(dir.path(), &[[3; 32], [2; 32]]).unwrap();
        assert_eq!(load_secret_keys(None, dir.path()).unwrap(), vec![[3; 32], [2; 32]]);
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
