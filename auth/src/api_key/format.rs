//! The format of database users' API keys: `pcu_<id>_<secret><check>`.
//!
//! - `pcu_`: a fixed prefix, so secret scanners and people recognise the key;
//! - `<id>`: 12 random base62 characters naming the key (not the user), so a key is found
//!   with one map lookup and rotation changes it (and with it the first letters);
//! - `<secret>`: 43 base62 characters drawn from the OS random source: 256 bits;
//! - `<check>`: CRC32 of everything before it, as 6 base62 characters, so a mistyped or
//!   made-up key is refused before any lookup or hashing.
//!
//! Only the SHA-256 digest of the whole key is stored; the key is shown once.

use std::fmt;

/// The fixed prefix of every database key.
pub const PREFIX: &str = "pcu_";
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 43;
const CHECK_LEN: usize = 6;
/// The length of every database key.
pub const KEY_LEN: usize = PREFIX.len() + ID_LEN + 1 + SECRET_LEN + CHECK_LEN;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A freshly generated key. Its `Debug` is redacted; the text is reachable only through
/// [`NewKey::expose`], for the one response that shows it.
pub struct NewKey {
    text: String,
}

impl NewKey {
    /// The key text, to be shown to its owner once.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// A key the operator supplied (the bootstrap admin's, from `PORTCULLIS_BOOTSTRAP_ADMIN_KEY`),
    /// checked as a presented key is: shape and checksum.
    pub fn supplied(text: &str) -> Result<NewKey, KeyShapeError> {
        parse(text)?;
        Ok(NewKey {
            text: text.to_owned(),
        })
    }

    /// The key id (the part after the prefix, before the secret).
    pub fn id(&self) -> &str {
        &self.text[PREFIX.len()..PREFIX.len() + ID_LEN]
    }
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewKey([REDACTED])")
    }
}

/// Why a presented key is not a well-formed database key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyShapeError {
    /// Wrong length, separator or alphabet.
    Shape,
    /// The checksum does not match.
    Checksum,
}

/// Random bytes from the OS, failing closed.
fn random_bytes(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    getrandom::fill(buf)
}

/// `n` uniformly random base62 characters (rejection sampling: bytes >= 248 are dropped so
/// every character has probability exactly 1/62).
fn random_base62(n: usize, out: &mut String) -> Result<(), getrandom::Error> {
    let mut pool = [0u8; 64];
    let mut used = pool.len();
    let mut written = 0;
    while written < n {
        if used == pool.len() {
            random_bytes(&mut pool)?;
            used = 0;
        }
        let b = pool[used];
        used += 1;
        if b < 248 {
            out.push(ALPHABET[(b % 62) as usize] as char);
            written += 1;
        }
    }
    Ok(())
}

/// `value` as exactly `N` base62 digits (no allocation: the check runs on every request
/// with a database key).
fn base62_fixed<const N: usize>(mut value: u64) -> [u8; N] {
    let mut chars = [b'0'; N];
    for slot in chars.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    chars
}

fn check_of(body: &str) -> [u8; CHECK_LEN] {
    base62_fixed(u64::from(crc32fast::hash(body.as_bytes())))
}

/// Generates a new key.
pub fn generate() -> Result<NewKey, getrandom::Error> {
    let mut text = String::with_capacity(KEY_LEN);
    text.push_str(PREFIX);
    random_base62(ID_LEN, &mut text)?;
    text.push('_');
    random_base62(SECRET_LEN, &mut text)?;
    let check = check_of(&text);
    text.extend(check.iter().copied().map(char::from));
    Ok(NewKey { text })
}

/// Whether a presented token claims to be a database key (it carries the prefix).
pub fn looks_like_db_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// Checks a presented key's shape and checksum without any lookup; returns its id.
pub fn parse(token: &str) -> Result<&str, KeyShapeError> {
    let bytes = token.as_bytes();
    if bytes.len() != KEY_LEN || !token.starts_with(PREFIX) {
        return Err(KeyShapeError::Shape);
    }
    let id_end = PREFIX.len() + ID_LEN;
    if bytes[id_end] != b'_' {
        return Err(KeyShapeError::Shape);
    }
    let base62 = |s: &[u8]| s.iter().all(u8::is_ascii_alphanumeric);
    if !base62(&bytes[PREFIX.len()..id_end]) || !base62(&bytes[id_end + 1..]) {
        return Err(KeyShapeError::Shape);
    }
    let (body, check) = token.split_at(KEY_LEN - CHECK_LEN);
    if check_of(body) != check.as_bytes() {
        return Err(KeyShapeError::Checksum);
    }
    Ok(&token[PREFIX.len()..id_end])
}

/// The first three characters after the prefix, shown to admins as `apiKeyFirstLetters`.
pub fn first_letters(key_id: &str) -> &str {
    key_id.get(..3).unwrap_or(key_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip() {
        for _ in 0..100 {
            let key = generate().expect("random");
            assert_eq!(key.expose().len(), KEY_LEN);
            assert_eq!(parse(key.expose()), Ok(key.id()));
        }
    }

    #[test]
    fn generated_keys_differ() {
        let a = generate().expect("random");
        let b = generate().expect("random");
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.id(), b.id());
    }

    #[test]
    fn rejects_bad_checksums_and_shapes() {
        let key = generate().expect("random");
        let text = key.expose();
        // Flip one character of the secret: the checksum no longer matches.
        let mut flipped = text.to_owned().into_bytes();
        let i = PREFIX.len() + ID_LEN + 5;
        flipped[i] = if flipped[i] == b'a' { b'b' } else { b'a' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert_eq!(parse(&flipped), Err(KeyShapeError::Checksum));
        for bad in [
            "",
            "pcu_",
            &text[..KEY_LEN - 1],
            &format!("{text}x"),
            &text.replacen("pcu_", "pcx_", 1),
            &text.replace('_', "-"),
            &format!("{}!{}", &text[..20], &text[21..]),
        ] {
            assert_eq!(parse(bad), Err(KeyShapeError::Shape), "{bad:?}");
        }
    }

    #[test]
    fn debug_is_redacted() {
        let key = generate().expect("random");
        assert!(!format!("{key:?}").contains(key.expose()));
    }

    #[test]
    fn base62_is_fixed_width() {
        assert_eq!(&base62_fixed::<6>(0), b"000000");
        assert_eq!(&base62_fixed::<2>(61), b"0z");
        assert_eq!(base62_fixed::<6>(u64::from(u32::MAX)).len(), 6);
    }
}
