//! The issuer's JWKS loaded into verification keys, each bound to exactly one algorithm.
//!
//! At load, a key is ignored (and the reason logged) when it is not a signing key (`use`
//! other than `sig`, `key_ops` without `verify`), has an unknown `kty` or curve, an RSA
//! modulus under 2048 bits, malformed parameters, an `alg` that contradicts its type, or an
//! algorithm the issuer does not advertise. Two different keys with the same `kid` and
//! algorithm are ambiguous: both are dropped and tokens naming them are refused (RFC 8725
//! §3.1: the key fixes the algorithm, never the token alone).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::alg::Alg;

/// The longest `kid` accepted, in bytes, in a JWKS or a token header.
pub(crate) const MAX_KID_BYTES: usize = 256;
/// The smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits.
const MAX_RSA_BITS: usize = 16_384;
/// A token without `kid` is tried against at most this many keys of its algorithm.
const MAX_CANDIDATES: usize = 8;
/// The most keys taken from one JWKS.
const MAX_KEYS: usize = 256;

/// aws-lc's verification parameters for an RSA algorithm (keys of 2048 to 8192 bits).
fn rsa_parameters(alg: Alg) -> Option<&'static aws_lc_rs::signature::RsaParameters> {
    use aws_lc_rs::signature as sig;
    match alg {
        Alg::Rs256 => Some(&sig::RSA_PKCS1_2048_8192_SHA256),
        Alg::Rs384 => Some(&sig::RSA_PKCS1_2048_8192_SHA384),
        Alg::Rs512 => Some(&sig::RSA_PKCS1_2048_8192_SHA512),
        Alg::Ps256 => Some(&sig::RSA_PSS_2048_8192_SHA256),
        Alg::Ps384 => Some(&sig::RSA_PSS_2048_8192_SHA384),
        Alg::Ps512 => Some(&sig::RSA_PSS_2048_8192_SHA512),
        Alg::Es256 | Alg::Es384 | Alg::Es512 | Alg::EdDsa => None,
    }
}

/// Strict base64url (RFC 7515 §2): the URL-safe alphabet only, no padding, no whitespace,
/// canonical trailing bits. The engine refuses everything else itself.
pub(crate) fn decode_b64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Whether every byte is in the base64url alphabet (so a bad signature can be told from a
/// malformed one before decoding). Branch-free, so the compiler vectorizes it.
pub(crate) fn is_b64url(text: &str) -> bool {
    text.bytes().fold(true, |ok, b| {
        let letter = (b | 0x20).wrapping_sub(b'a') < 26;
        let digit = b.wrapping_sub(b'0') < 10;
        ok & (letter | digit | (b == b'-') | (b == b'_'))
    })
}

/// Key material, verified with aws-lc-rs directly.
enum Material {
    /// An RSA key parsed once at load, so a verification does not rebuild it (jsonwebtoken
    /// re-creates the key from `n` and `e` on every call: a modular reduction and Montgomery
    /// set-up per token, about a third of an RS256 check).
    Rsa(aws_lc_rs::signature::ParsedPublicKey),
    /// An uncompressed EC point (ES256, ES384, ES512) or an Ed25519 public key (EdDSA), with
    /// the algorithm that verifies it (fixed-size `r || s` signatures, as in JWS).
    Point(
        &'static dyn aws_lc_rs::signature::VerificationAlgorithm,
        Vec<u8>,
    ),
}

/// aws-lc's verification algorithm for an EC or EdDSA algorithm (`None` for RSA ones).
fn point_algorithm(alg: Alg) -> Option<&'static dyn aws_lc_rs::signature::VerificationAlgorithm> {
    use aws_lc_rs::signature as sig;
    match alg {
        Alg::Es256 => Some(&sig::ECDSA_P256_SHA256_FIXED),
        Alg::Es384 => Some(&sig::ECDSA_P384_SHA384_FIXED),
        Alg::Es512 => Some(&sig::ECDSA_P521_SHA512_FIXED),
        Alg::EdDsa => Some(&sig::ED25519),
        Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => None,
    }
}

/// One public key from the JWKS, bound to one algorithm.
pub(crate) struct VerifyKey {
    kid: Option<String>,
    alg: Alg,
    uid: u64,
    material: Material,
}

impl VerifyKey {
    /// The algorithm this key verifies.
    pub(crate) fn alg(&self) -> Alg {
        self.alg
    }

    /// A stable id of the key material and binding, equal across refetches of the same key.
    pub(crate) fn uid(&self) -> u64 {
        self.uid
    }

    /// Whether `signature` (decoded) signs `signing_input` under this key.
    pub(crate) fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            Material::Rsa(key) => key.verify_sig(signing_input, signature).is_ok(),
            Material::Point(algorithm, point) => {
                aws_lc_rs::signature::UnparsedPublicKey::new(*algorithm, point)
                    .verify(signing_input, signature)
                    .is_ok()
            }
        }
    }
}

/// Why a JWKS entry was not loaded (for the log).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Ignored {
    /// `use` is not `sig`.
    NotForSignatures,
    /// `key_ops` does not contain `verify`.
    NoVerifyOperation,
    /// `kty` is not RSA, EC or OKP, or the curve is not supported.
    UnsupportedType,
    /// `alg` is not an accepted algorithm (HS*, none, unknown).
    UnsupportedAlg,
    /// `alg` does not fit the key's type or curve.
    AlgMismatch,
    /// The algorithm is not among those the issuer advertises.
    NotAdvertised,
    /// An RSA key without `alg` when several RSA algorithms are accepted.
    NoBinding,
    /// RSA modulus under 2048 bits.
    WeakRsa,
    /// Missing or malformed parameters, or a `kid` that is not a short string.
    Malformed,
    /// Another key has the same `kid` and algorithm.
    Ambiguous,
}

impl Ignored {
    fn describe(self) -> &'static str {
        match self {
            Ignored::NotForSignatures => "use is not sig",
            Ignored::NoVerifyOperation => "key_ops lacks verify",
            Ignored::UnsupportedType => "unsupported kty or curve",
            Ignored::UnsupportedAlg => "alg not accepted (HS*, none or unknown)",
            Ignored::AlgMismatch => "alg does not fit the key type",
            Ignored::NotAdvertised => "algorithm not advertised by the issuer",
            Ignored::NoBinding => "RSA key without alg and no single RSA algorithm to bind it to",
            Ignored::WeakRsa => "RSA modulus under 2048 bits",
            Ignored::Malformed => "malformed parameters or kid",
            Ignored::Ambiguous => "another key has the same kid and algorithm",
        }
    }
}

/// The JWKS entries not loaded: each with its `kid` (if a string) and the reason.
pub(crate) type IgnoredKeys = Vec<(Option<String>, Ignored)>;

/// What a lookup for a token's key found.
pub(crate) enum Lookup {
    /// Keys of the token's algorithm to try (one, when the token names a `kid`).
    Found(Vec<Arc<VerifyKey>>),
    /// The `kid` is known, but its key is bound to another algorithm.
    WrongAlg,
    /// The `kid` and algorithm name more than one key.
    Ambiguous,
    /// The token names a `kid` the set does not hold.
    UnknownKid,
    /// The token names no `kid` and no key has its algorithm.
    NoKey,
}

/// A loaded key set: the published snapshot request handlers read.
pub(crate) struct KeySet {
    by_kid: HashMap<String, Vec<Arc<VerifyKey>>>,
    ambiguous: HashSet<(String, Alg)>,
    all: Vec<Arc<VerifyKey>>,
    algorithms: Vec<Alg>,
    uids: HashSet<u64>,
    loaded_at: Option<Instant>,
}

/// The published key set: written only by the JwksRefresher, read by every request with a
/// lock-free load. Cloning shares it.
#[derive(Clone)]
pub(crate) struct PublishedKeys(Arc<ArcSwap<KeySet>>);

impl PublishedKeys {
    /// An empty set, until the first fetch.
    pub(crate) fn new() -> Self {
        PublishedKeys(Arc::new(ArcSwap::from_pointee(KeySet::empty())))
    }

    /// The current key set.
    pub(crate) fn load(&self) -> Arc<KeySet> {
        self.0.load_full()
    }

    /// Replaces the key set; requests that loaded the old one finish with it.
    pub(crate) fn store(&self, keys: Arc<KeySet>) {
        self.0.store(keys);
    }
}

impl KeySet {
    /// The set before anything has loaded.
    pub(crate) fn empty() -> Self {
        KeySet {
            by_kid: HashMap::new(),
            ambiguous: HashSet::new(),
            all: Vec::new(),
            algorithms: Vec::new(),
            uids: HashSet::new(),
            loaded_at: None,
        }
    }

    /// Parses a JWKS document, keeping the keys whose algorithm is in `algorithms`. Returns
    /// the set and the ignored entries (kid, reason), or why the document itself is invalid.
    pub(crate) fn from_jwks(
        body: &[u8],
        algorithms: &[Alg],
        loaded_at: Instant,
    ) -> Result<(KeySet, IgnoredKeys), &'static str> {
        let doc: Value = serde_json::from_slice(body).map_err(|_| "the JWKS is not JSON")?;
        let entries = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("the JWKS has no \"keys\" array")?;
        let mut ignored = Vec::new();
        let mut loaded: Vec<VerifyKey> = Vec::new();
        for entry in entries.iter().take(MAX_KEYS) {
            let kid = entry
                .get("kid")
                .and_then(Value::as_str)
                .map(|k| k.chars().take(MAX_KID_BYTES).collect::<String>());
            match load_key(entry, algorithms) {
                Ok(key) => loaded.push(key),
                Err(why) => ignored.push((kid, why)),
            }
        }

        // Identical entries collapse; different keys sharing (kid, alg) are ambiguous.
        let mut seen: HashMap<(Option<String>, Alg), u64> = HashMap::new();
        let mut ambiguous: HashSet<(String, Alg)> = HashSet::new();
        let mut unique: Vec<VerifyKey> = Vec::new();
        for key in loaded {
            let slot = (key.kid.clone(), key.alg);
            match seen.get(&slot) {
                Some(uid) if *uid == key.uid => {}
                Some(_) => {
                    if let Some(kid) = &key.kid {
                        ambiguous.insert((kid.clone(), key.alg));
                    }
                }
                None => {
                    seen.insert(slot, key.uid);
                    unique.push(key);
                }
            }
        }
        let mut set = KeySet {
            algorithms: algorithms.to_vec(),
            loaded_at: Some(loaded_at),
            ..KeySet::empty()
        };
        for key in unique {
            if let Some(kid) = &key.kid {
                if ambiguous.contains(&(kid.clone(), key.alg)) {
                    ignored.push((Some(kid.clone()), Ignored::Ambiguous));
                    continue;
                }
            }
            let key = Arc::new(key);
            set.uids.insert(key.uid);
            if let Some(kid) = &key.kid {
                set.by_kid.entry(kid.clone()).or_default().push(key.clone());
            }
            set.all.push(key);
        }
        set.ambiguous = ambiguous;
        Ok((set, ignored))
    }

    /// Whether anything has loaded.
    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded_at.is_some()
    }

    /// Whether the keys may be used at `now`: loaded, and not older than `max_staleness`.
    pub(crate) fn is_usable(&self, now: Instant, max_staleness: Duration) -> bool {
        self.loaded_at
            .is_some_and(|at| now.saturating_duration_since(at) <= max_staleness)
    }

    /// The number of usable keys.
    pub(crate) fn len(&self) -> usize {
        self.all.len()
    }

    /// Whether the issuer's algorithms include `alg`.
    pub(crate) fn accepts(&self, alg: Alg) -> bool {
        self.algorithms.contains(&alg)
    }

    /// Every usable key's `kid`, algorithm and uid, in load order (for the fuzz targets).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn all_keys(&self) -> impl Iterator<Item = (Option<&str>, Alg, u64)> {
        self.all.iter().map(|k| (k.kid.as_deref(), k.alg, k.uid))
    }

    /// Whether the set holds a key with this `uid`.
    pub(crate) fn has_uid(&self, uid: u64) -> bool {
        self.uids.contains(&uid)
    }

    /// Whether the set knows this `kid` (usable or ambiguous).
    pub(crate) fn knows_kid(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid) || self.ambiguous.iter().any(|(k, _)| k == kid)
    }

    /// The uids of this set's keys.
    pub(crate) fn uids(&self) -> &HashSet<u64> {
        &self.uids
    }

    /// The key(s) for a token with this `kid` and algorithm.
    pub(crate) fn find(&self, kid: Option<&str>, alg: Alg) -> Lookup {
        match kid {
            Some(kid) => {
                if self.ambiguous.iter().any(|(k, a)| k == kid && *a == alg) {
                    return Lookup::Ambiguous;
                }
                match self.by_kid.get(kid) {
                    None if self.knows_kid(kid) => Lookup::WrongAlg,
                    None => Lookup::UnknownKid,
                    Some(keys) => {
                        let matching: Vec<Arc<VerifyKey>> =
                            keys.iter().filter(|k| k.alg == alg).cloned().collect();
                        if matching.is_empty() {
                            Lookup::WrongAlg
                        } else {
                            Lookup::Found(matching)
                        }
                    }
                }
            }
            None => {
                let matching: Vec<Arc<VerifyKey>> = self
                    .all
                    .iter()
                    .filter(|k| k.alg == alg)
                    .take(MAX_CANDIDATES)
                    .cloned()
                    .collect();
                if matching.is_empty() {
                    Lookup::NoKey
                } else {
                    Lookup::Found(matching)
                }
            }
        }
    }

    /// A one-line summary of ignored entries for the log (kids escaped by `Debug`).
    pub(crate) fn describe_ignored(ignored: &[(Option<String>, Ignored)]) -> String {
        ignored
            .iter()
            .map(|(kid, why)| format!("{:?}: {}", kid.as_deref().unwrap_or(""), why.describe()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// An optional string member; `Err` when present with another type.
fn text<'a>(key: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Ignored> {
    match key.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Ignored::Malformed),
    }
}

fn required<'a>(key: &'a Map<String, Value>, name: &str) -> Result<&'a str, Ignored> {
    text(key, name)?.ok_or(Ignored::Malformed)
}

fn bytes_of(key: &Map<String, Value>, name: &str) -> Result<Vec<u8>, Ignored> {
    decode_b64url(required(key, name)?).ok_or(Ignored::Malformed)
}

/// The bound algorithm: the key's `alg` when given (it must fit), else `implied`.
fn bind(declared: Option<Alg>, implied: Alg) -> Result<Alg, Ignored> {
    match declared {
        Some(alg) if alg != implied => Err(Ignored::AlgMismatch),
        _ => Ok(implied),
    }
}

fn load_key(entry: &Value, accepted: &[Alg]) -> Result<VerifyKey, Ignored> {
    let key = entry.as_object().ok_or(Ignored::Malformed)?;
    if let Some(usage) = text(key, "use")? {
        if usage != "sig" {
            return Err(Ignored::NotForSignatures);
        }
    }
    if let Some(ops) = key.get("key_ops") {
        let ops = ops.as_array().ok_or(Ignored::Malformed)?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err(Ignored::NoVerifyOperation);
        }
    }
    let kid = match text(key, "kid")? {
        Some(kid) if kid.len() > MAX_KID_BYTES => return Err(Ignored::Malformed),
        kid => kid.map(str::to_owned),
    };
    let declared = match text(key, "alg")? {
        None => None,
        Some(name) => Some(Alg::from_name(name).ok_or(Ignored::UnsupportedAlg)?),
    };

    let kty = required(key, "kty")?;
    let (alg, material, fingerprint): (Alg, Material, Vec<u8>) = match kty {
        "RSA" => {
            let n = bytes_of(key, "n")?;
            let e = bytes_of(key, "e")?;
            let n = strip_leading_zeros(&n);
            let e = strip_leading_zeros(&e);
            let bits = bit_length(n);
            if bits < MIN_RSA_BITS {
                return Err(Ignored::WeakRsa);
            }
            if bits > MAX_RSA_BITS || e.is_empty() || e.len() > 8 {
                return Err(Ignored::Malformed);
            }
            let alg = match declared {
                Some(alg) if alg.is_rsa() => alg,
                Some(_) => return Err(Ignored::AlgMismatch),
                None => rsa_default(accepted)?,
            };
            let mut fingerprint = n.to_vec();
            fingerprint.push(b'.');
            fingerprint.extend_from_slice(e);
            let params = rsa_parameters(alg).ok_or(Ignored::AlgMismatch)?;
            let parsed = aws_lc_rs::signature::RsaPublicKeyComponents { n, e }
                .to_parsed_public_key(params)
                .map_err(|_| Ignored::Malformed)?;
            (alg, Material::Rsa(parsed), fingerprint)
        }
        "EC" => {
            let (implied, size) = match required(key, "crv")? {
                "P-256" => (Alg::Es256, 32),
                "P-384" => (Alg::Es384, 48),
                "P-521" => (Alg::Es512, 66),
                _ => return Err(Ignored::UnsupportedType),
            };
            let alg = bind(declared, implied)?;
            let x = bytes_of(key, "x")?;
            let y = bytes_of(key, "y")?;
            if x.len() != size || y.len() != size {
                return Err(Ignored::Malformed);
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let algorithm = point_algorithm(alg).ok_or(Ignored::AlgMismatch)?;
            (alg, Material::Point(algorithm, point.clone()), point)
        }
        "OKP" => {
            if required(key, "crv")? != "Ed25519" {
                return Err(Ignored::UnsupportedType);
            }
            let alg = bind(declared, Alg::EdDsa)?;
            let x = bytes_of(key, "x")?;
            if x.len() != 32 {
                return Err(Ignored::Malformed);
            }
            let algorithm = point_algorithm(alg).ok_or(Ignored::AlgMismatch)?;
            (alg, Material::Point(algorithm, x.clone()), x)
        }
        _ => return Err(Ignored::UnsupportedType),
    };
    if !accepted.contains(&alg) {
        return Err(Ignored::NotAdvertised);
    }
    let mut hasher = Sha256::new();
    hasher.update(alg.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(kid.as_deref().unwrap_or("").as_bytes());
    hasher.update([0]);
    hasher.update(&fingerprint);
    let digest = hasher.finalize();
    let mut uid = [0u8; 8];
    uid.copy_from_slice(&digest[..8]);
    Ok(VerifyKey {
        kid,
        alg,
        uid: u64::from_be_bytes(uid),
        material,
    })
}

/// The algorithm of an RSA key without `alg`: RS256 when accepted (the OIDC default),
/// else the single accepted RSA algorithm.
fn rsa_default(accepted: &[Alg]) -> Result<Alg, Ignored> {
    if accepted.contains(&Alg::Rs256) {
        return Ok(Alg::Rs256);
    }
    let mut rsa = accepted.iter().copied().filter(|a| a.is_rsa());
    match (rsa.next(), rsa.next()) {
        (Some(alg), None) => Ok(alg),
        (None, _) => Err(Ignored::NotAdvertised),
        (Some(_), Some(_)) => Err(Ignored::NoBinding),
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn bit_length(bytes: &[u8]) -> usize {
    match bytes.first() {
        None => 0,
        Some(&top) => (bytes.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}
