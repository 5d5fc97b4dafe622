//! Database-key parsing (`auth/src/api_key/format.rs`): `pcu_<12 id>_<43 secret><6 check>`.
//!
//! Input: a first byte choosing the mode, then either a presented key (raw mode) or bytes
//! mapped onto a well-formed key (structured mode), whose checksum this target computes
//! itself (CRC32 of the body as 6 base62 digits, most significant first).
//!
//! What must hold: an accepted key has the length, prefix, separator and alphabet, its id is
//! the 12 characters after the prefix, and `NewKey::supplied` agrees; a key with a correct
//! checksum is accepted; changing any one character of it, or swapping two different
//! neighbours, is refused (a CRC32 catches every error burst up to 32 bits).

use portcullis_auth::api_key::format::{self, KeyShapeError, KEY_LEN, PREFIX};
use portcullis_auth::api_key::NewKey;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ID_END: usize = 4 + 12;
const BODY_LEN: usize = KEY_LEN - 6;

/// The checksum, computed independently of the product's code.
pub fn checksum(body: &str) -> String {
    let mut value = u64::from(crc32fast::hash(body.as_bytes()));
    let mut digits = [b'0'; 6];
    for slot in digits.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8_lossy(&digits).into_owned()
}

/// A well-formed key built from arbitrary bytes.
pub fn well_formed(bytes: &[u8]) -> String {
    let mut body = String::from(PREFIX);
    for i in 0..BODY_LEN - PREFIX.len() {
        if PREFIX.len() + i == ID_END {
            body.push('_');
        } else {
            let b = bytes.get(i).copied().unwrap_or(0);
            body.push(char::from(ALPHABET[usize::from(b) % 62]));
        }
    }
    let check = checksum(&body);
    body + &check
}

fn check_presented(text: &str) {
    let parsed = format::parse(text);
    assert_eq!(parsed.is_ok(), NewKey::supplied(text).is_ok());
    if let Ok(id) = parsed {
        let bytes = text.as_bytes();
        assert_eq!(bytes.len(), KEY_LEN);
        assert!(format::looks_like_db_key(text));
        assert_eq!(bytes[ID_END], b'_');
        assert!(bytes[PREFIX.len()..]
            .iter()
            .enumerate()
            .all(|(i, b)| b.is_ascii_alphanumeric() || PREFIX.len() + i == ID_END));
        assert_eq!(id, &text[PREFIX.len()..ID_END]);
        assert_eq!(
            text[BODY_LEN..],
            checksum(&text[..BODY_LEN]),
            "a wrong checksum passed"
        );
        assert_eq!(format::first_letters(id), &id[..3]);
    } else if text.len() == KEY_LEN && text.starts_with(PREFIX) && text.is_char_boundary(BODY_LEN) {
        // Refused with the right shape only for the checksum, and then it is wrong.
        if parsed == Err(KeyShapeError::Checksum) {
            assert_ne!(text[BODY_LEN..], checksum(&text[..BODY_LEN]));
        }
    }
}

/// The target.
pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            check_presented(text);
        }
        return;
    }
    let key = well_formed(rest);
    assert!(format::parse(&key).is_ok(), "a well-formed key was refused");
    check_presented(&key);

    // One character changed, at a position and to a character the input chooses.
    let at = usize::from(rest.first().copied().unwrap_or(0)) % KEY_LEN;
    let to = rest.get(1).copied().unwrap_or(b'x');
    let mut changed = key.clone().into_bytes();
    if changed[at] != to {
        changed[at] = to;
        if let Ok(text) = String::from_utf8(changed) {
            assert!(
                format::parse(&text).is_err(),
                "a one-character change passed"
            );
            check_presented(&text);
        }
    }
    // Two different neighbours swapped.
    let mut swapped = key.into_bytes();
    let at = at.min(KEY_LEN - 2);
    if swapped[at] != swapped[at + 1] {
        swapped.swap(at, at + 1);
        let text = String::from_utf8_lossy(&swapped).into_owned();
        assert!(format::parse(&text).is_err(), "a transposition passed");
    }
}
