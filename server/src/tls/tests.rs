//! Loading and reloading the pair, without a listener: what is refused, what the errors say,
//! and that a refused reload leaves the served pair and counts.

use std::path::Path;
use std::time::Duration;

use portcullis_config::TlsSettings;

use super::{ReloadTrigger, Tls, TlsError};

struct Pair {
    cert: String,
    key: String,
}

fn pair() -> Pair {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    Pair {
        cert: made.cert.pem(),
        key: made.key_pair.serialize_pem(),
    }
}

fn settings(dir: &Path) -> TlsSettings {
    TlsSettings {
        cert_file: dir.join("tls.crt"),
        key_file: dir.join("tls.key"),
        client_auth: None,
        metrics: false,
        reload_interval: Duration::from_secs(5),
    }
}

fn write(settings: &TlsSettings, cert: &str, key: &str) {
    std::fs::write(&settings.cert_file, cert).unwrap();
    std::fs::write(&settings.key_file, key).unwrap();
}

/// The leaf new handshakes get.
fn served(tls: &Tls) -> Vec<u8> {
    tls.resolver.current().cert[0].to_vec()
}

fn reloads(tls: &Tls, result: &str) -> u64 {
    tls.reloads.with_label_values(&[result]).get()
}

#[test]
fn a_key_that_does_not_match_is_refused_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    write(&settings, &pair().cert, &pair().key);
    let err = Tls::load(&settings).err().unwrap();
    assert!(matches!(err, TlsError::Mismatch { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "the private key in {} does not match the certificate in {}",
            settings.key_file.display(),
            settings.cert_file.display()
        )
    );
}

#[test]
fn unreadable_files_are_named_and_the_key_is_never_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    let good = pair();
    write(&settings, "not pem\n", &good.key);
    let err = Tls::load(&settings).err().unwrap().to_string();
    assert!(
        err.starts_with(&format!(
            "cannot use the certificates in {}",
            settings.cert_file.display()
        )),
        "{err}"
    );

    // A damaged key: its base64 body must not reach the message.
    let body = good.key.lines().nth(1).unwrap();
    let damaged = good.key.replace(body, &format!("{body}!!"));
    write(&settings, &good.cert, &damaged);
    let err = Tls::load(&settings).err().unwrap().to_string();
    assert!(
        err.starts_with(&format!(
            "cannot use the private key in {}",
            settings.key_file.display()
        )),
        "{err}"
    );
    assert!(!err.contains(body));

    write(&settings, &good.cert, &good.cert);
    let err = Tls::load(&settings).err().unwrap().to_string();
    assert!(err.contains("holds no PRIVATE KEY block"), "{err}");
}

#[test]
fn a_refused_reload_keeps_the_served_pair_and_an_applied_one_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    let first = pair();
    write(&settings, &first.cert, &first.key);
    let tls = Tls::load(&settings).unwrap();
    let original = served(&tls);
    assert_eq!(reloads(&tls, "applied"), 0);
    assert_eq!(reloads(&tls, "refused"), 0);

    let second = pair();
    write(&settings, &second.cert, &first.key);
    assert!(tls.reload(ReloadTrigger::FileChange).is_err());
    assert_eq!(served(&tls), original);
    assert_eq!(reloads(&tls, "refused"), 1);

    write(&settings, &second.cert, &second.key);
    tls.reload(ReloadTrigger::Signal).unwrap();
    assert_ne!(served(&tls), original);
    assert_eq!(reloads(&tls, "applied"), 1);
}

#[test]
fn configurations_offer_alpn_per_listener() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    let made = pair();
    write(&settings, &made.cert, &made.key);
    let tls = Tls::load(&settings).unwrap();
    let http = tls.http_config().unwrap();
    assert_eq!(
        http.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    assert_eq!(
        tls.grpc_config().unwrap().alpn_protocols,
        vec![b"h2".to_vec()]
    );
    assert_eq!(
        tls.metrics_config().unwrap().alpn_protocols,
        vec![b"http/1.1".to_vec()]
    );
    assert!(!tls.metrics_listener());
}
