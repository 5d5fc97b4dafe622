//! A per-thread memo of the SHA-256 of tokens the verified-token cache answered: a client
//! sends the same token on every request until it expires, and hashing a JWT of several
//! hundred bytes was the largest single cost of a cache hit. The memo only remembers the
//! digest of the exact bytes it was computed from: a presented token is looked up by a cheap
//! index, then compared in full, in constant time, with the bytes remembered in that slot; on
//! a match its digest is that token's SHA-256, on anything else the digest is computed as
//! before. The verified-token cache itself still decides (expiry, key still published), so
//! the memo never accepts a token: it saves a hash, nothing more.
//!
//! Only tokens the cache has just answered with a hit are remembered (so a flood of unknown
//! tokens cannot evict them), in one of [`SLOTS`] slots per worker thread: at most
//! `SLOTS` x [`super::MAX_TOKEN_BYTES`] bytes per thread.

use std::cell::RefCell;

use subtle::ConstantTimeEq;

use super::cache::{self, TokenDigest};

/// Slots per thread (a power of two).
const SLOTS: usize = 64;

/// One remembered token: its bytes and their SHA-256.
struct Entry {
    token: Box<[u8]>,
    digest: TokenDigest,
}

thread_local! {
    static MEMO: RefCell<Vec<Option<Entry>>> = const { RefCell::new(Vec::new()) };
}

/// The slot a token may be remembered in: its length and its last eight bytes (the end of a
/// JWT's signature, which differs from token to token). Anyone can choose a token that lands
/// in a given slot; that only costs a remembered token its place, never a wrong digest.
fn slot_of(token: &[u8]) -> usize {
    let mut tail = [0u8; 8];
    let start = token.len().saturating_sub(8);
    tail[..token.len() - start].copy_from_slice(&token[start..]);
    let mixed = (u64::from_le_bytes(tail) ^ token.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> (64 - SLOTS.trailing_zeros())) as usize
}

/// Whether `a` and `b` are the same bytes, in time that depends only on their lengths (a
/// remembered token is a secret of whoever sent it). Thirty-two bytes, then eight, at a
/// time: the words' differences are or-ed into one accumulator, passed through `black_box`
/// after every block so the compiler can never stop early, and judged once by `subtle`. A
/// byte at a time through `subtle`'s barrier, a 600-byte JWT cost about 8,000 instructions,
/// more than the rest of a cache hit; with the barrier after every word, about 860.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a_blocks, mut b_blocks) = (a.chunks_exact(32), b.chunks_exact(32));
    let mut differ = 0u64;
    for (x, y) in (&mut a_blocks).zip(&mut b_blocks) {
        let block = (0..4).fold(0, |acc, i| {
            let at = i * 8..i * 8 + 8;
            acc | (word(&x[at.clone()]) ^ word(&y[at]))
        });
        differ = std::hint::black_box(differ | block);
    }
    let (mut a_words, mut b_words) = (
        a_blocks.remainder().chunks_exact(8),
        b_blocks.remainder().chunks_exact(8),
    );
    for (x, y) in (&mut a_words).zip(&mut b_words) {
        differ = std::hint::black_box(differ | (word(x) ^ word(y)));
    }
    let rest = a_words.remainder().ct_eq(b_words.remainder());
    (differ.ct_eq(&0) & rest).into()
}

/// Eight bytes as one word.
fn word(bytes: &[u8]) -> u64 {
    let mut eight = [0u8; 8];
    eight.copy_from_slice(bytes);
    u64::from_le_bytes(eight)
}

/// The SHA-256 of `token`: remembered when this thread remembered these exact bytes,
/// computed otherwise.
pub(crate) fn digest(token: &str) -> TokenDigest {
    let bytes = token.as_bytes();
    let remembered = MEMO.with(|memo| {
        let memo = memo.try_borrow().ok()?;
        let entry = memo.get(slot_of(bytes))?.as_ref()?;
        same_bytes(&entry.token, bytes).then_some(entry.digest)
    });
    remembered.unwrap_or_else(|| cache::digest(token))
}

/// Remembers that `digest` is the SHA-256 of `token` (the caller computed it with
/// [`digest`]: the cache answered a hit for it).
pub(crate) fn remember(token: &str, digest: TokenDigest) {
    let bytes = token.as_bytes();
    MEMO.with(|memo| {
        let Ok(mut memo) = memo.try_borrow_mut() else {
            return;
        };
        if memo.is_empty() {
            memo.resize_with(SLOTS, || None);
        }
        let slot = &mut memo[slot_of(bytes)];
        // Equal digests are the same token (SHA-256 has no known collision).
        if slot.as_ref().is_some_and(|entry| entry.digest == digest) {
            return;
        }
        *slot = Some(Entry {
            token: bytes.into(),
            digest,
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_every_byte() {
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlLWJ5dGVz";
        assert!(same_bytes(token.as_bytes(), token.as_bytes()));
        for at in 0..token.len() {
            let mut other = token.as_bytes().to_vec();
            other[at] ^= 1;
            assert!(!same_bytes(token.as_bytes(), &other), "byte {at}");
        }
        // Lengths with a remainder after the words, every byte in a word or the remainder.
        let long = "x".repeat(600) + "eyJhbGciOiJSUzI1NiJ9.abc";
        for len in [
            1,
            7,
            8,
            9,
            15,
            16,
            17,
            31,
            32,
            33,
            40,
            63,
            64,
            65,
            long.len(),
        ] {
            let token = &long.as_bytes()[long.len() - len..];
            assert!(same_bytes(token, token));
            for at in 0..len {
                let mut other = token.to_vec();
                other[at] ^= 0x80;
                assert!(!same_bytes(token, &other), "length {len}, byte {at}");
            }
        }
        assert!(!same_bytes(b"abc", b"abcd"));
        assert!(!same_bytes(b"abcdefgh", b"abcdefghi"));
        assert!(same_bytes(b"", b""));
    }

    #[test]
    fn remembers_only_the_exact_token() {
        let token = "header.payload.signature-of-the-first-token";
        let digest_of = cache::digest(token);
        remember(token, digest_of);
        assert_eq!(digest(token), digest_of);
        // Same slot (same length and last eight bytes), other bytes: computed, not taken.
        let twin = "HEADER.payload.signature-of-the-first-token";
        assert_eq!(slot_of(twin.as_bytes()), slot_of(token.as_bytes()));
        assert_eq!(digest(twin), cache::digest(twin));
        assert_ne!(digest(twin), digest_of);
        // A token that takes its slot is answered; the first one is computed again.
        remember(twin, cache::digest(twin));
        assert_eq!(digest(twin), cache::digest(twin));
        assert_eq!(digest(token), digest_of);
        // Short tokens have a slot too.
        remember("a", cache::digest("a"));
        assert_eq!(digest("a"), cache::digest("a"));
        assert_eq!(digest(""), cache::digest(""));
    }
}
