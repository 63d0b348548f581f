//! Sealed secrets: registry passwords, proxy credentials, notification URLs and secret
//! env vars are stored encrypted with XChaCha20-Poly1305 under a 256-bit master key.
//!
//! Format of a sealed value: `dw1:<key id>:<base64(nonce ‖ ciphertext)>`. The key id (first
//! 8 hex digits of SHA-256 of the key) lets a keyring hold the old and the new key while a
//! rotation is under way, and makes "sealed under another key" a clear error instead of
//! garbage. Every value is bound to its place (table, column, row) with associated data, so
//! a ciphertext copied into another row does not open.
//!
//! Invariant: this module knows nothing of SQL or HTTP; plaintext never leaves it in a log.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

const FORMAT_PREFIX: &str = "dw1";
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

/// What can go wrong opening or loading secrets; callers branch on these.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("sealed value is not in the dw1 format")]
    Malformed,
    #[error(
        "sealed value was sealed under key {0}, which is not loaded: was the key file replaced?"
    )]
    UnknownKey(String),
    #[error(
        "sealed value does not open: it was tampered with, moved to another row, or the key is wrong"
    )]
    Tampered,
    #[error(
        "key file {path} is readable by group or others (mode {mode:o}): run `chmod 600 {path}`"
    )]
    KeyFilePermissions { path: String, mode: u32 },
    #[error("key file {path} is not a base64 32-byte key: {reason}")]
    KeyFileInvalid { path: String, reason: String },
    #[error("key file {path}: {source}")]
    KeyFileIo {
        path: String,
        source: std::io::Error,
    },
}

/// A 256-bit master key. Wiped from memory when dropped; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; KEY_LEN]);

impl MasterKey {
    pub fn generate() -> MasterKey {
        MasterKey(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    /// Short public identifier of the key, stored with every value it seals.
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.0)[..4])
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id())
    }
}

/// Seals with the current key; opens with any key it holds (the current one, and during
/// a rotation the previous one).
#[derive(Clone, Debug)]
pub struct Sealer {
    current: MasterKey,
    others: Vec<MasterKey>,
}

impl Sealer {
    pub fn new(current: MasterKey) -> Sealer {
        Sealer {
            current,
            others: Vec::new(),
        }
    }

    /// A sealer that seals with `current` and still opens values sealed under `previous`.
    pub fn with_previous(current: MasterKey, previous: MasterKey) -> Sealer {
        Sealer {
            current,
            others: vec![previous],
        }
    }

    /// Encrypts `plaintext`, bound to `context` (e.g. `registries.secret:7`).
    pub fn seal(&self, context: &str, plaintext: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self
            .current
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            // Encryption fails only for messages over 256 GiB.
            .unwrap_or_default();
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        format!(
            "{FORMAT_PREFIX}:{}:{}",
            self.current.id(),
            BASE64.encode(blob)
        )
    }

    /// Decrypts a value sealed by [`Sealer::seal`] with the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String, CryptoError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(FORMAT_PREFIX), Some(key_id), Some(body)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(CryptoError::Malformed);
        };
        let key = std::iter::once(&self.current)
            .chain(self.others.iter())
            .find(|k| k.id() == key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_string()))?;
        let blob = BASE64.decode(body).map_err(|_| CryptoError::Malformed)?;
        if blob.len() < NONCE_LEN {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let plaintext = key
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Tampered)?;
        String::from_utf8(plaintext).map_err(|_| CryptoError::Tampered)
    }
}

/// Where the master key lives, and the file a rotation writes before it commits.
#[derive(Clone, Debug)]
pub struct KeyFile {
    path: PathBuf,
}

impl KeyFile {
    pub fn new(path: impl Into<PathBuf>) -> KeyFile {
        KeyFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file a rotation writes the new key to until the store has been re-sealed.
    pub fn next_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".next");
        PathBuf::from(name)
    }

    /// Loads the key, creating it (mode 0600) when the file does not exist yet.
    /// Returns the key and whether it was created now.
    pub fn load_or_create(&self) -> Result<(MasterKey, bool), CryptoError> {
        if self.path.exists() {
            return Ok((read_key(&self.path)?, false));
        }
        let key = MasterKey::generate();
        write_key(&self.path, &key)?;
        Ok((key, true))
    }

    /// A key a rotation left behind in `<key file>.next`, if any.
    pub fn load_next(&self) -> Result<Option<MasterKey>, CryptoError> {
        let next = self.next_path();
        if next.exists() {
            Ok(Some(read_key(&next)?))
        } else {
            Ok(None)
        }
    }

    pub fn write_next(&self, key: &MasterKey) -> Result<(), CryptoError> {
        let next = self.next_path();
        let _ = fs::remove_file(&next);
        write_key(&next, key)
    }

    /// Makes the `.next` key the key (an atomic rename).
    pub fn promote_next(&self) -> Result<(), CryptoError> {
        fs::rename(self.next_path(), &self.path).map_err(|source| CryptoError::KeyFileIo {
            path: self.path.display().to_string(),
            source,
        })
    }
}

fn read_key(path: &Path) -> Result<MasterKey, CryptoError> {
    let display = path.display().to_string();
    let io = |source| CryptoError::KeyFileIo {
        path: display.clone(),
        source,
    };
    let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CryptoError::KeyFilePermissions {
            path: display,
            mode,
        });
    }
    let mut text = fs::read_to_string(path).map_err(io)?;
    let decoded = BASE64.decode(text.trim());
    text.zeroize();
    let mut bytes = decoded.map_err(|e| CryptoError::KeyFileInvalid {
        path: display.clone(),
        reason: e.to_string(),
    })?;
    if bytes.len() != KEY_LEN {
        let reason = format!("{} bytes instead of {KEY_LEN}", bytes.len());
        bytes.zeroize();
        return Err(CryptoError::KeyFileInvalid {
            path: display,
            reason,
        });
    }
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&bytes);
    bytes.zeroize();
    Ok(MasterKey(key))
}

fn write_key(path: &Path, key: &MasterKey) -> Result<(), CryptoError> {
    let io = |source| CryptoError::KeyFileIo {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io)?;
    }
    // create_new + mode 0600 at open: the key is never readable by others, not even briefly.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    let mut encoded = BASE64.encode(key.0);
    let written = writeln!(file, "{encoded}").and_then(|_| file.sync_all());
    encoded.zeroize();
    written.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_value_opens_with_same_context_only() {
        let sealer = Sealer::new(MasterKey::generate());
        let sealed = sealer.seal("registries.secret:1", "hunter2");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(
            sealer.open("registries.secret:1", &sealed).unwrap(),
            "hunter2"
        );
        assert!(matches!(
            sealer.open("registries.secret:2", &sealed),
            Err(CryptoError::Tampered)
        ));
    }

    #[test]
    fn two_seals_of_one_value_differ() {
        let sealer = Sealer::new(MasterKey::generate());
        assert_ne!(sealer.seal("c", "same"), sealer.seal("c", "same"));
    }

    #[test]
    fn flipped_byte_is_an_error_not_garbage() {
        let sealer = Sealer::new(MasterKey::generate());
        let sealed = sealer.seal("c", "secret value");
        let (head, body) = sealed.rsplit_once(':').unwrap();
        let mut blob = BASE64.decode(body).unwrap();
        let last = blob.len() - 1;
        blob[last] ^= 0x01;
        let tampered = format!("{head}:{}", BASE64.encode(blob));
        assert!(matches!(
            sealer.open("c", &tampered),
            Err(CryptoError::Tampered)
        ));
        assert!(matches!(
            sealer.open("c", "plain text"),
            Err(CryptoError::Malformed)
        ));
    }

    #[test]
    fn value_sealed_under_an_unknown_key_says_so() {
        let old = Sealer::new(MasterKey::generate());
        let sealed = old.seal("c", "v");
        let other = Sealer::new(MasterKey::generate());
        assert!(matches!(
            other.open("c", &sealed),
            Err(CryptoError::UnknownKey(_))
        ));
    }

    #[test]
    fn key_file_is_created_0600_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let file = KeyFile::new(dir.path().join("master.key"));
        let (key, created) = file.load_or_create().unwrap();
        assert!(created);
        let mode = fs::metadata(file.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (again, created) = file.load_or_create().unwrap();
        assert!(!created);
        assert_eq!(key.id(), again.id());
    }

    #[test]
    fn key_file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = KeyFile::new(dir.path().join("master.key"));
        file.load_or_create().unwrap();
        fs::set_permissions(file.path(), fs::Permissions::from_mode(0o644)).unwrap();
        let err = file.load_or_create().unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
