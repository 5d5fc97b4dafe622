//! What a security review of the running binary found (issue 11), one test per finding: the
//! modes of the data files, secrets in configuration errors, the store's `Content-Type`, the
//! batch's memory, slow bodies and an operator-supplied bootstrap key.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use portcullis_config::vars;
use portcullis_tests::{Server, ServerBuilder};
use serde_json::{json, Value};

/// A server that serves everyone (anonymous on, no authorization list).
fn open_server() -> ServerBuilder {
    ServerBuilder::new().env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
}

/// Weaviate's handler-error body.
fn error(message: &str) -> Value {
    json!({"error": [{"message": message}]})
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Creates a class and writes an object, so both databases have their WAL side files.
async fn write_something(server: &Server) {
    let reply = server
        .post("/v1/schema")
        .json(&json!({"class": "Doc", "properties": [{"name": "title", "dataType": ["text"]}]}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = server
        .post("/v1/objects")
        .json(&json!({"class": "Doc", "properties": {"title": "x"}}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

// Finding 7: the data directory was created 0755 and the databases 0644 (under the usual umask),
// so any local user could read key digests and documents.
#[tokio::test]
async fn data_directory_is_0700_and_database_files_0600() {
    // The bootstrap default: database users on, so users.db exists beside objects.db.
    let server = ServerBuilder::new().start().await;
    let data = server.data_dir().to_owned();
    let anonymous = open_server().data_dir(&data.join("open")).start().await;
    write_something(&anonymous).await;
    assert_eq!(mode(&data), 0o700, "{}", data.display());
    for dir in [data.clone(), data.join("open")] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("data directory listing") {
            let path = entry.expect("directory entry").path();
            if path.is_file() {
                seen += 1;
                assert_eq!(mode(&path), 0o600, "{}", path.display());
            }
        }
        assert!(seen >= 3, "expected the databases and their side files");
    }
    assert!(
        !server.stderr().contains("readable by other users"),
        "{}",
        server.stderr()
    );
}

#[tokio::test]
async fn a_looser_existing_data_directory_is_kept_with_a_warning_naming_the_fix() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).expect("data directory");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(data.join("objects.db"), b"").expect("empty database");
    std::fs::set_permissions(
        data.join("objects.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let server = open_server().data_dir(&data).start().await;
    assert_eq!(
        mode(&data),
        0o755,
        "the operator's directory is not changed"
    );
    assert_eq!(mode(&data.join("objects.db")), 0o600);
    let stderr = server.stderr();
    assert!(
        stderr.contains("the data directory is readable by other users")
            && stderr.contains(&format!("chmod 700 {}", data.display())),
        "{stderr}"
    );
}
