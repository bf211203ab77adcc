//! Secrets at rest: what Sluice must be able to read back (access-key secrets, which SigV4 needs,
//! and camera passwords) is sealed with ChaCha20-Poly1305 under a key kept in the data directory
//! (`secret.key`, mode 0600) or given in `SLUICE_SECRET_KEY` (64 hex digits). The catalog holds
//! only sealed text: `v1:` + base64(nonce ‖ ciphertext ‖ tag).

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::error::{Error, Result};

pub const KEY_ENV: &str = "SLUICE_SECRET_KEY";
const PREFIX: &str = "v1:";

pub struct Sealer {
    key: LessSafeKey,
    /// The raw key, for keys derived from it ([`Sealer::derive`]).
    raw: [u8; 32],
}

impl Sealer {
    /// The key from `SLUICE_SECRET_KEY`, or `dir/secret.key`, created (0600) when missing.
    pub fn load_or_create(dir: &Path) -> Result<Sealer> {
        let bytes = match std::env::var(KEY_ENV) {
            Ok(hex) => decode_hex(hex.trim()).ok_or_else(|| {
                Error::invalid(format!("{KEY_ENV} must be 64 hexadecimal digits"))
            })?,
            Err(_) => key_file(&dir.join("secret.key"))?,
        };
        Ok(Sealer::new(&bytes))
    }

    pub fn new(raw: &[u8; 32]) -> Sealer {
        let key = UnboundKey::new(&CHACHA20_POLY1305, raw).expect("a 32-byte ChaCha20 key");
        Sealer { key: LessSafeKey::new(key), raw: *raw }
    }

    /// A key for another purpose (`label`), derived from this one: HMAC-SHA256(key, label).
    pub fn derive(&self, label: &str) -> [u8; 32] {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = match <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.raw) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }

    pub fn seal(&self, plain: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random source");
        let mut data = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
            .expect("sealing cannot fail for in-memory data");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    /// The secret, or an error when the text was not sealed with this key (a changed key file).
    pub fn open(&self, sealed: &str) -> Result<String> {
        let bad = || {
            Error::internal(
                "a sealed secret in the catalog cannot be opened with this secret key (was secret.key replaced?)",
            )
        };
        let raw = sealed.strip_prefix(PREFIX).ok_or_else(bad)?;
        let mut raw = STANDARD.decode(raw).map_err(|_| bad())?;
        if raw.len() < NONCE_LEN {
            return Err(bad());
        }
        let mut data = raw.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&raw).map_err(|_| bad())?;
        let plain = self.key.open_in_place(nonce, Aad::empty(), &mut data).map_err(|_| bad())?;
        String::from_utf8(plain.to_vec()).map_err(|_| bad())
    }

    pub fn is_sealed(text: &str) -> bool {
        text.starts_with(PREFIX)
    }
}

fn key_file(path: &Path) -> Result<[u8; 32]> {
    match std::fs::read(path) {
        Ok(bytes) => bytes
            .try_into()
            .map_err(|_| Error::invalid(format!("{} must hold exactly 32 bytes", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| Error::internal(format!("random: {e}")))?;
            let mut f = std::fs::OpenOptions::new();
            f.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
            let mut file = f.open(path)?;
            file.write_all(&key)?;
            file.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e.into()),
    }
}

fn decode_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_refuses_other_keys() {
        let a = Sealer::new(&[1; 32]);
        let sealed = a.seal("hunter2");
        assert!(Sealer::is_sealed(&sealed) && !sealed.contains("hunter2"));
        assert_ne!(sealed, a.seal("hunter2"), "a fresh nonce each time");
        assert_eq!(a.open(&sealed).unwrap(), "hunter2");
        assert!(Sealer::new(&[2; 32]).open(&sealed).is_err());
        assert!(a.open("v1:!!").is_err() && a.open("plain").is_err() && a.open("v1:").is_err());
    }

    #[test]
    fn the_key_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = Sealer::load_or_create(dir.path()).unwrap().seal("x");
        let b = Sealer::load_or_create(dir.path()).unwrap();
        assert_eq!(b.open(&a).unwrap(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secret.key")).unwrap().permissions();
            assert_eq!(mode.mode() & 0o777, 0o600);
        }
        assert_eq!(decode_hex(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(decode_hex("zz"), None);
    }
}
