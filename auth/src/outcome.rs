//! What an authentication comes to: [`Authenticated`] or [`Denied`], and the closed sets that
//! describe it, the method tried and the reason. Metric labels are taken only from these
//! enums, never from request data.

use crate::Principal;

/// An accepted credential: who the caller is and the method that accepted it.
#[derive(Clone, Debug)]
pub struct Authenticated {
    /// The caller.
    pub principal: Principal,
    /// How the caller was judged (the metric label).
    pub method: AuthMethod,
}

/// A refused credential, as every authentication path reports it (API keys, OIDC, the
/// gatekeeper's own rules): the method that judged it and why. The server maps it to one
/// response; the reason goes to metrics and logs, never to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denied {
    /// The method that judged the credential ([`AuthMethod::None`] when none could be chosen).
    pub method: AuthMethod,
    /// Why it was refused (never [`Reason::Ok`]).
    pub reason: Reason,
}

/// The authentication method a request was judged by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// A static API key from the environment.
    ApiKeyStatic,
    /// A database user's API key.
    ApiKeyDb,
    /// An OpenID Connect bearer token.
    Oidc,
    /// No credential, admitted as the anonymous principal.
    Anonymous,
    /// No method could be chosen (missing or malformed credential).
    None,
}

impl AuthMethod {
    /// Every method, in label order.
    pub const ALL: [AuthMethod; 5] = [
        AuthMethod::ApiKeyStatic,
        AuthMethod::ApiKeyDb,
        AuthMethod::Oidc,
        AuthMethod::Anonymous,
        AuthMethod::None,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ApiKeyStatic => "apikey_static",
            AuthMethod::ApiKeyDb => "apikey_db",
            AuthMethod::Oidc => "oidc",
            AuthMethod::Anonymous => "anonymous",
            AuthMethod::None => "none",
        }
    }

    /// Position in [`AuthMethod::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why a request was accepted (`Ok`) or denied. The precise reason goes to metrics and logs;
/// the client sees the same generic answer for every invalid credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Accepted.
    Ok,
    /// No credential, and anonymous access is off.
    Missing,
    /// The Authorization header is ambiguous or unparsable (two headers, empty bearer, ...).
    Malformed,
    /// A credential was sent but no authentication scheme is configured.
    Unconfigured,
    /// The API key matches no key.
    InvalidKey,
    /// The key was revoked.
    Revoked,
    /// The key's user is deactivated.
    UserInactive,
    /// The token has expired.
    Expired,
    /// The token is not valid yet (`nbf` or `iat` in the future).
    NotYetValid,
    /// The token's signature does not verify.
    BadSignature,
    /// The token names a key id the issuer does not publish.
    UnknownKid,
    /// The token's issuer is not the configured one.
    BadIssuer,
    /// The token's audience does not contain the client id.
    BadAudience,
    /// The token's algorithm is not allowed.
    DisallowedAlg,
    /// A required claim is missing or of the wrong type.
    MissingClaim,
    /// The token could not be judged because no issuer keys are available.
    IssuerUnavailable,
    /// The bearer token is not an acceptable JWT: over 8 KiB, not strict base64url, not
    /// duplicate-free JSON objects, or a header with `crit`, a nested `cty` or a wrong `typ`.
    MalformedToken,
    /// Something inside the server failed (an actor did not answer).
    Internal,
    /// The client has spent its budget of failed credential checks; the credential was not
    /// judged.
    Throttled,
    /// A database key, while the store shared by replicas has not been read within
    /// `PORTCULLIS_KEY_REVOCATION_BOUND`: the key was not judged.
    StoreUnavailable,
}

impl Reason {
    /// Every reason, in label order.
    pub const ALL: [Reason; 20] = [
        Reason::Ok,
        Reason::Missing,
        Reason::Malformed,
        Reason::Unconfigured,
        Reason::InvalidKey,
        Reason::Revoked,
        Reason::UserInactive,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::BadSignature,
        Reason::UnknownKid,
        Reason::BadIssuer,
        Reason::BadAudience,
        Reason::DisallowedAlg,
        Reason::MissingClaim,
        Reason::IssuerUnavailable,
        Reason::MalformedToken,
        Reason::Internal,
        Reason::Throttled,
        Reason::StoreUnavailable,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Ok => "ok",
            Reason::Missing => "missing",
            Reason::Malformed => "malformed",
            Reason::Unconfigured => "unconfigured",
            Reason::InvalidKey => "invalid_key",
            Reason::Revoked => "revoked",
            Reason::UserInactive => "user_inactive",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::BadSignature => "bad_signature",
            Reason::UnknownKid => "unknown_kid",
            Reason::BadIssuer => "bad_issuer",
            Reason::BadAudience => "bad_audience",
            Reason::DisallowedAlg => "disallowed_alg",
            Reason::MissingClaim => "missing_claim",
            Reason::IssuerUnavailable => "issuer_unavailable",
            Reason::MalformedToken => "malformed_token",
            Reason::Internal => "internal",
            Reason::Throttled => "throttled",
            Reason::StoreUnavailable => "store_unavailable",
        }
    }

    /// Position in [`Reason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether a denial with this reason spends the client's budget of failed credential
    /// checks: the credential was judged and found wrong. Not a missing or unparsable
    /// header, a credential sent to a server with no method, or the server's own failure.
    pub fn is_credential_failure(self) -> bool {
        match self {
            Reason::InvalidKey
            | Reason::Revoked
            | Reason::UserInactive
            | Reason::Expired
            | Reason::NotYetValid
            | Reason::BadSignature
            | Reason::UnknownKid
            | Reason::BadIssuer
            | Reason::BadAudience
            | Reason::DisallowedAlg
            | Reason::MissingClaim
            | Reason::MalformedToken => true,
            Reason::Ok
            | Reason::Missing
            | Reason::Malformed
            | Reason::Unconfigured
            | Reason::IssuerUnavailable
            | Reason::Internal
            | Reason::Throttled
            | Reason::StoreUnavailable => false,
        }
    }

    /// `accept` for [`Reason::Ok`], `deny` otherwise.
    pub fn result(self) -> &'static str {
        if self == Reason::Ok {
            "accept"
        } else {
            "deny"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_are_in_index_order() {
        for (i, m) in AuthMethod::ALL.iter().enumerate() {
            assert_eq!(m.index(), i, "{m:?}");
        }
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?}");
        }
    }

    #[test]
    fn only_ok_is_an_accept() {
        for r in Reason::ALL {
            assert_eq!(r.result() == "accept", r == Reason::Ok, "{r:?}");
        }
    }
}
