//! The server's closed label sets. Each is declared with [`label_enum!`], so a label's spelling
//! sits next to its variant and `ALL` and `index` follow the declaration order by construction.
//! (The sets of the auth crate, `AuthMethod`, `Reason`, `FetchTrigger` and `FetchResult`, are
//! declared there with the same three items.)

use actix_web::http::Method;

/// Declares a closed label set: a fieldless enum whose variants each name their label value,
/// with `ALL` (every value in declaration order), `as_str` (the label value) and `index` (the
/// position in `ALL`, for cached metric slots).
macro_rules! label_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => $label:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        $vis enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $name {
            /// Every value, in [`Self::index`] order.
            pub const ALL: [$name; [$($label),+].len()] = [$($name::$variant),+];

            /// The metric label value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $label, )+
                }
            }

            /// The position in [`Self::ALL`], a dense index for cached metric slots.
            pub fn index(self) -> usize {
                self as usize
            }
        }
    };
}
// The gRPC label sets (metrics/grpc.rs, grpc/methods.rs) are declared the same way.
pub(crate) use label_enum;

label_enum! {
    /// The `method` label of HTTP metrics: the common methods, and `other` for the rest (a
    /// client chooses the method, so its spelling never becomes a label).
    pub enum HttpMethod {
        /// `GET`.
        Get => "GET",
        /// `HEAD`.
        Head => "HEAD",
        /// `POST`.
        Post => "POST",
        /// `PUT`.
        Put => "PUT",
        /// `PATCH`.
        Patch => "PATCH",
        /// `DELETE`.
        Delete => "DELETE",
        /// `OPTIONS`.
        Options => "OPTIONS",
        /// Any other method.
        Other => "other",
    }
}

impl HttpMethod {
    /// The label of a request's method.
    pub fn of(method: &Method) -> HttpMethod {
        match *method {
            Method::GET => HttpMethod::Get,
            Method::HEAD => HttpMethod::Head,
            Method::POST => HttpMethod::Post,
            Method::PUT => HttpMethod::Put,
            Method::PATCH => HttpMethod::Patch,
            Method::DELETE => HttpMethod::Delete,
            Method::OPTIONS => HttpMethod::Options,
            _ => HttpMethod::Other,
        }
    }
}

label_enum! {
    /// An authorization decision, the `result` label of `portcullis_authorization_total`.
    pub enum Decision {
        /// The verb was allowed.
        Allow => "allow",
        /// The verb was refused (403).
        Deny => "deny",
    }
}

impl Decision {
    /// The decision for `allowed`.
    pub fn of(allowed: bool) -> Decision {
        if allowed {
            Decision::Allow
        } else {
            Decision::Deny
        }
    }
}

label_enum! {
    /// How a forwarded request ended, as far as the upstream is concerned.
    pub enum UpstreamResult {
        /// The upstream answered with response headers (any status).
        Ok => "ok",
        /// No connection to the upstream could be made.
        ConnectError => "connect_error",
        /// The upstream did not answer within the timeout.
        Timeout => "timeout",
        /// Any other failure (connection reset, malformed response, client body aborted).
        Error => "error",
    }
}

label_enum! {
    /// A user-management operation, the `op` label of `portcullis_key_operations_total`.
    pub enum KeyOperation {
        /// `POST /v1/users/db/{id}`.
        Create => "create",
        /// `POST /v1/users/db/{id}/rotate-key`.
        Rotate => "rotate",
        /// `POST /v1/users/db/{id}/activate`.
        Activate => "activate",
        /// `POST /v1/users/db/{id}/deactivate`.
        Deactivate => "deactivate",
        /// `DELETE /v1/users/db/{id}`.
        Delete => "delete",
    }
}

label_enum! {
    /// How a user-management operation ended, the `result` label of
    /// `portcullis_key_operations_total`.
    pub enum KeyOutcome {
        /// Done.
        Ok => "ok",
        /// Refused: not an admin, a bad name, a conflict, an unknown user.
        Rejected => "rejected",
        /// The server failed (the store or the actor).
        Failed => "failed",
    }
}

label_enum! {
    /// The `state` label of `portcullis_db_users`.
    pub enum UserState {
        /// Active database users.
        Active => "active",
        /// Deactivated database users.
        Inactive => "inactive",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_is_at_its_index() {
        fn check<T: Copy + std::fmt::Debug>(all: &[T], index: fn(T) -> usize) {
            for (i, value) in all.iter().enumerate() {
                assert_eq!(index(*value), i, "{value:?}");
            }
        }
        check(&HttpMethod::ALL, HttpMethod::index);
        check(&Decision::ALL, Decision::index);
        check(&UpstreamResult::ALL, UpstreamResult::index);
        check(&KeyOperation::ALL, KeyOperation::index);
        check(&KeyOutcome::ALL, KeyOutcome::index);
        check(&UserState::ALL, UserState::index);
        assert_eq!(UpstreamResult::ConnectError.as_str(), "connect_error");
        assert_eq!(
            HttpMethod::of(&Method::from_bytes(b"BREW").expect("a method")),
            HttpMethod::Other
        );
    }
}
