//! `Secret<T>`: a value that never shows itself in `Debug` or `Display` output.

use std::fmt;

/// The text printed in place of a secret.
pub const REDACTED: &str = "[REDACTED]";

/// A secret whose `Debug` and `Display` print `[REDACTED]`.
///
/// The value is reachable only through [`Secret::expose`], so every use is visible in review.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret value itself. Never log or print it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "not-a-real-key-7f3a";

    #[test]
    fn debug_and_display_are_redacted() {
        let secret = Secret::new(VALUE.to_owned());
        let debug = format!("{secret:?}");
        let alternate = format!("{secret:#?}");
        let display = format!("{secret}");
        for text in [&debug, &alternate, &display] {
            assert!(!text.contains(VALUE), "a formatted secret shows its value");
            assert_eq!(text, REDACTED);
        }
    }

    #[test]
    fn redaction_holds_inside_containers() {
        let secrets = vec![Secret::new(VALUE.to_owned()), Secret::new(VALUE.to_owned())];
        let text = format!("{secrets:?}");
        assert!(!text.contains(VALUE), "a formatted secret shows its value");
        assert_eq!(text, "[[REDACTED], [REDACTED]]");
    }

    #[test]
    fn expose_returns_the_value() {
        let secret = Secret::new(VALUE.to_owned());
        assert!(secret.expose() == VALUE, "expose returned another value");
        assert!(
            secret.clone() == secret,
            "a clone differs from its original"
        );
    }
}
