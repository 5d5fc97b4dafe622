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

/// A server with the `Doc` class the store tests write to.
async fn store_with_doc_class(builder: ServerBuilder) -> Server {
    let server = builder.start().await;
    let reply = server
        .post("/v1/schema")
        .json(&json!({"class": "Doc", "properties": [{"name": "title", "dataType": ["text"]}]}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    server
}

const UNSUPPORTED_MEDIA_TYPE: &str =
    "the request body must be JSON, sent with Content-Type: application/json";

// Finding 6: the store read any body as JSON, so a web page could write with a cross-site
// `text/plain` (or form) POST that the browser sends without asking first.
#[tokio::test]
async fn store_writes_need_content_type_application_json() {
    let server = store_with_doc_class(open_server()).await;
    let object = r#"{"class": "Doc", "properties": {"title": "x"}}"#;
    for content_type in [
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("text/json"),
        Some("application/ld+json"),
        Some("application/jsonx"),
        None,
    ] {
        for (method, path, body) in [
            ("POST", "/v1/objects", object),
            ("POST", "/v1/batch/objects", r#"{"objects": []}"#),
            ("POST", "/v1/schema", r#"{"class": "Other"}"#),
            ("PUT", "/v1/schema/Doc", r#"{"class": "Doc"}"#),
            (
                "POST",
                "/v1/schema/Doc/properties",
                r#"{"name": "n", "dataType": ["int"]}"#,
            ),
            (
                "PATCH",
                "/v1/objects/Doc/00000000-0000-4000-8000-00000000000a",
                r#"{"properties": {}}"#,
            ),
        ] {
            let mut request = server
                .request(method.parse().expect("method"), path)
                .body(body);
            if let Some(value) = content_type {
                request = request.header("content-type", value);
            }
            let reply = request.send().await;
            assert_eq!(
                (reply.status.as_u16(), reply.json()),
                (415, error(UNSUPPORTED_MEDIA_TYPE)),
                "{method} {path} with {content_type:?}"
            );
        }
    }
    assert_eq!(
        server.get("/v1/objects").send().await.json()["objects"],
        json!([]),
        "nothing was written"
    );
    for content_type in ["application/json", "Application/JSON; charset=utf-8"] {
        let reply = server
            .post("/v1/objects")
            .header("content-type", content_type)
            .body(object)
            .send()
            .await;
        assert_eq!(reply.status, 200, "{content_type}: {reply:?}");
    }
    // Reads and deletes carry no body and need no Content-Type.
    assert_eq!(server.get("/v1/schema/Doc").send().await.status, 200);
    assert_eq!(server.delete("/v1/schema/Doc").send().await.status, 200);
}

// Finding 1: a batch of non-object elements answered about 100 bytes per element and held
// several hundred bytes of memory per element: 0.5 MB of body took 740 MB.
#[tokio::test]
async fn a_batch_over_the_cap_or_with_a_non_object_is_refused_whole() {
    let server = store_with_doc_class(open_server().env(vars::MAX_BATCH_OBJECTS, "3")).await;
    let doc = json!({"class": "Doc", "properties": {"title": "x"}});
    let reply = server
        .post("/v1/batch/objects")
        .json(&json!({"objects": [doc, doc, doc, doc]}))
        .send()
        .await;
    assert_eq!(
        (reply.status.as_u16(), reply.json()),
        (
            422,
            error(
                "a batch may hold at most 3 objects (PORTCULLIS_MAX_BATCH_OBJECTS); \
                 send them in smaller batches"
            )
        )
    );
    let reply = server
        .post("/v1/batch/objects")
        .json(&json!({"objects": [doc, 0, doc]}))
        .send()
        .await;
    assert_eq!(
        (reply.status.as_u16(), reply.json()),
        (
            422,
            error("invalid batch: objects[1] is not a JSON object (got a number); nothing was written")
        )
    );
    assert_eq!(
        server.get("/v1/objects").send().await.json()["objects"],
        json!([]),
        "a refused batch writes nothing"
    );
    let reply = server
        .post("/v1/batch/objects")
        .json(&json!({"objects": [doc, doc, doc]}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json().as_array().map(Vec::len), Some(3));
}

/// The server's peak resident memory so far, in bytes (`VmHWM`).
fn peak_rss(server: &Server) -> u64 {
    let pid = server.pid().expect("server pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kib * 1024
}

/// `{"objects": [e, e, ...]}` with `count` copies of `element`.
fn batch_of(element: &str, count: usize) -> String {
    let mut body = String::with_capacity(count * (element.len() + 1) + 16);
    body.push_str(r#"{"objects": ["#);
    for i in 0..count {
        if i > 0 {
            body.push(',');
        }
        body.push_str(element);
    }
    body.push_str("]}");
    body
}

// Finding 1, measured: a 10 MiB batch of any shape raises the server's peak memory by less
// than 100 MB (it took about 15 GB before). A measurement with a generous bound.
#[tokio::test]
async fn a_10_mib_batch_of_any_shape_keeps_peak_memory_within_100_mb() {
    const TEN_MIB: usize = 10 * 1024 * 1024;
    const BOUND: u64 = 100 * 1000 * 1000;
    let server = store_with_doc_class(open_server()).await;
    let before = peak_rss(&server);
    let string = r#""a string of thirty-six characters.""#.to_owned();
    // As many objects as the default cap allows, each about 1 KB, in just under 10 MiB.
    let title = "t".repeat(TEN_MIB / 10_000 - 60);
    let object = format!(r#"{{"class":"Doc","properties":{{"title":"{title}"}}}}"#);
    let cases = [
        // About 280,000 elements that are not objects.
        (string.clone(), TEN_MIB / (string.len() + 1) - 1, 422),
        // About 3.5 million empty objects: over the cap.
        ("{}".to_owned(), TEN_MIB / 3 - 10, 422),
        (object.clone(), 10_000, 200),
    ];
    for (element, count, status) in cases {
        let body = batch_of(&element, count);
        assert!(body.len() <= TEN_MIB, "{}", body.len());
        let reply = server
            .post("/v1/batch/objects")
            .header("content-type", "application/json")
            .body(body)
            .timeout(std::time::Duration::from_secs(300))
            .send()
            .await;
        assert_eq!(reply.status, status, "{:.300}", reply.text());
        let grown = peak_rss(&server).saturating_sub(before);
        assert!(
            grown < BOUND,
            "peak RSS grew by {grown} bytes after {count} elements like {:.20}",
            element
        );
        eprintln!(
            "{count} x {:.20}: {status}, peak RSS +{grown} bytes",
            element
        );
    }
}

// Finding 9: a request that declared a body and sent one byte held its connection and handler
// forever; actix-web's client_request_timeout covers only the headers.
#[tokio::test]
async fn a_stalled_body_gets_408_from_the_store() {
    let server = open_server().env(vars::BODY_TIMEOUT, "1s").start().await;
    for path in ["/v1/schema", "/v1/batch/objects", "/v1/objects"] {
        let started = std::time::Instant::now();
        let reply = stalled_upload(&server, path).await;
        assert_eq!(
            (reply.status, reply.json()),
            (408, error("the request body was not received in time")),
            "{path}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(8),
            "{path}"
        );
        // The gate answers the 408 itself: it carries the request id and is logged as a 408.
        let id = reply
            .header("x-request-id")
            .expect("an X-Request-Id")
            .to_owned();
        let log = server.stderr();
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("request_id=\"{id}\"")) && l.contains(" status=408 ")),
            "{path}: no access line with status 408 for {id}"
        );
    }
    // A body that arrives in time is served.
    let reply = server
        .post("/v1/schema")
        .json(&json!({"class": "Doc"}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[tokio::test]
async fn a_stalled_upload_gets_408_from_the_proxy() {
    // An upstream that accepts connections and never answers.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("upstream listener");
    let upstream_addr = upstream.local_addr().expect("upstream address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = upstream.accept().await {
            held.push(socket);
        }
    });
    let server = open_server()
        .env(vars::UPSTREAM_URL, format!("http://{upstream_addr}"))
        .env(vars::BODY_TIMEOUT, "1s")
        .start()
        .await;
    let reply = stalled_upload(&server, "/v1/objects").await;
    assert_eq!(
        (reply.status, reply.json()),
        (408, error("the request body was not received in time"))
    );
}

/// Sends the headers of a JSON POST declaring 100 bytes, then one byte, then waits.
async fn stalled_upload(server: &Server, path: &str) -> portcullis_tests::RawResponse {
    let addr = server.http;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\nConnection: close\r\n\r\n{{"
    );
    portcullis_tests::raw_request(addr, request.as_bytes()).await
}
