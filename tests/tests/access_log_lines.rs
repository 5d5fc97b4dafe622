//! The access log's lines under concurrent load (the gate formats them itself, off tracing's
//! formatter, and a writer thread writes them): every line whole and exactly as specified, in
//! text and JSON, each client's lines in the order its requests were answered, none dropped
//! and the dropped-lines counter exported at 0.

use portcullis_config::vars;
use portcullis_tests::{client, ServerBuilder};

const CLIENTS: usize = 8;
const PER_CLIENT: usize = 150;
const KEY: &str = "access-log-lines-key-0000000000000000000";

/// What one request sends and the line it must produce (between the timestamp and `micros`).
struct Sent {
    id: String,
    credential: Option<&'static str>,
    path: &'static str,
}

/// Request `seq` of client `c`: anonymous, a good static key, a wrong one (401), or an
/// unrouted path (404 after authentication), in turn.
fn request(c: usize, seq: usize) -> Sent {
    let id = format!("c{c}-{seq:05}");
    match seq % 4 {
        0 => Sent {
            id,
            credential: None,
            path: "/v1/meta",
        },
        1 => Sent {
            id,
            credential: Some(KEY),
            path: "/v1/meta",
        },
        2 => Sent {
            id,
            credential: Some("wrong-key-00000000000000000000000000000"),
            path: "/v1/meta",
        },
        _ => Sent {
            id,
            credential: Some(KEY),
            path: "/nowhere/%22odd%22",
        },
    }
}

/// The access line's fields after `request_id` and before `micros`, in text form.
fn text_fields(sent: &Sent) -> String {
    let (path, route, status, auth, outcome, reason, principal, user) =
        match (sent.credential, sent.path) {
            (None, _) => (
                "\"/v1/meta\"",
                "/v1/meta",
                200,
                "anonymous",
                "accept",
                "ok",
                "anonymous",
                "anonymous",
            ),
            (Some(KEY), "/v1/meta") => (
                "\"/v1/meta\"",
                "/v1/meta",
                200,
                "apikey_static",
                "accept",
                "ok",
                "static_key",
                "bench",
            ),
            (Some(_), "/v1/meta") => (
                "\"/v1/meta\"",
                "/v1/meta",
                401,
                "apikey_static",
                "deny",
                "invalid_key",
                "none",
                "",
            ),
            (Some(_), _) => (
                "\"/nowhere/%22odd%22\"",
                "unrouted",
                404,
                "apikey_static",
                "accept",
                "ok",
                "static_key",
                "bench",
            ),
        };
    format!(
        "client=127.0.0.1 method=GET route=\"{route}\" path={path} status={status} \
         auth=\"{auth}\" outcome=\"{outcome}\" reason=\"{reason}\" principal=\"{principal}\" \
         user=\"{user}\""
    )
}

/// The same line in JSON form, from its text form's fields.
fn json_fields(sent: &Sent) -> String {
    let text = text_fields(sent);
    let mut out = String::new();
    // Each text field is `name=value`; the path's value holds no space.
    for field in text.split(' ') {
        let (name, value) = field.split_once('=').unwrap();
        let json = match name {
            "status" => value.to_owned(),
            "client" | "method" => format!("\"{value}\""),
            // Recorded with Debug: the JSON string of the quoted text.
            "path" | "user" => serde_json::to_string(value).unwrap(),
            _ => value.to_owned(),
        };
        out.push_str(&format!(",\"{name}\":{json}"));
    }
    out
}

/// Splits a text access line into (timestamp, the fields after `request_id`, micros).
fn parse_text<'a>(line: &'a str, id: &str) -> (&'a str, &'a str, u64) {
    let (timestamp, rest) = line.split_at(27);
    let prefix = format!("  INFO portcullis::access: request_id=\"{id}\" ");
    let rest = rest
        .strip_prefix(prefix.as_str())
        .unwrap_or_else(|| panic!("line does not start as expected: {line}"));
    let (fields, micros) = rest
        .rsplit_once(" micros=")
        .unwrap_or_else(|| panic!("no micros: {line}"));
    (timestamp, fields, micros.parse().expect("micros"))
}

/// Splits a JSON access line into (timestamp, the fields after `request_id`, micros).
fn parse_json<'a>(line: &'a str, id: &str) -> (&'a str, &'a str, u64) {
    let value: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
    assert!(value.is_object(), "{line}");
    let rest = line
        .strip_prefix("{\"timestamp\":\"")
        .unwrap_or_else(|| panic!("no timestamp first: {line}"));
    let (timestamp, rest) = rest.split_at(27);
    let prefix = format!("\",\"level\":\"INFO\",\"request_id\":\"\\\"{id}\\\"\"");
    let rest = rest
        .strip_prefix(prefix.as_str())
        .unwrap_or_else(|| panic!("line does not start as expected: {line}"));
    let (fields, micros) = rest
        .rsplit_once(",\"micros\":")
        .unwrap_or_else(|| panic!("no micros: {line}"));
    let micros = micros
        .strip_suffix(",\"target\":\"portcullis::access\"}")
        .unwrap_or_else(|| panic!("does not end with the target: {line}"));
    (timestamp, fields, micros.parse().expect("micros"))
}

async fn lines_are_whole_and_in_order(format: &str) {
    let server = ServerBuilder::new()
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, KEY)
        .env(vars::APIKEY_USERS, "bench")
        // Wrong keys would otherwise be throttled (429) before the run ends.
        .env(vars::AUTH_FAILURE_LIMIT, "0")
        .env(vars::LOG_FORMAT, format)
        .start()
        .await;
    let http = client();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let http = http.clone();
            let base = server.url("");
            tokio::spawn(async move {
                // Each client waits for an answer before its next request: its lines must
                // appear in this order.
                for seq in 0..PER_CLIENT {
                    let sent = request(c, seq);
                    let mut req = http
                        .get(format!("{base}{}", sent.path))
                        .header("x-request-id", &sent.id);
                    if let Some(key) = sent.credential {
                        req = req.bearer_auth(key);
                    }
                    let reply = req.send().await.expect("request");
                    assert!(
                        [200, 401, 404].contains(&reply.status().as_u16()),
                        "{}: {}",
                        sent.id,
                        reply.status()
                    );
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client task");
    }
    let exposition = server.metrics_text().await;
    assert!(
        exposition.contains("# TYPE portcullis_log_lines_dropped_total counter"),
        "{exposition}"
    );
    assert!(
        exposition.contains("\nportcullis_log_lines_dropped_total 0\n"),
        "no line may be dropped while standard error is read"
    );
    let (code, log) = server.stop().await;
    assert_eq!(code, Some(0), "LOG_FORMAT={format}\n{log}");

    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("portcullis::access"))
        .collect();
    assert_eq!(access.len(), CLIENTS * PER_CLIENT, "LOG_FORMAT={format}");
    for c in 0..CLIENTS {
        let prefix = match format {
            "json" => format!("\"request_id\":\"\\\"c{c}-"),
            _ => format!("request_id=\"c{c}-"),
        };
        let mine: Vec<&str> = access
            .iter()
            .copied()
            .filter(|l| l.contains(&prefix))
            .collect();
        assert_eq!(mine.len(), PER_CLIENT, "client {c}");
        let mut last_timestamp = "";
        for (seq, line) in mine.iter().enumerate() {
            let sent = request(c, seq);
            let (timestamp, fields, micros) = match format {
                "json" => parse_json(line, &sent.id),
                _ => parse_text(line, &sent.id),
            };
            let expected = match format {
                "json" => json_fields(&sent),
                _ => text_fields(&sent),
            };
            assert_eq!(fields, expected, "client {c} request {seq}: {line}");
            assert!(micros < 60_000_000, "{line}");
            assert!(
                timestamp.len() == 27 && timestamp.ends_with('Z') && timestamp >= last_timestamp,
                "client {c} request {seq} out of order or malformed: {line}"
            );
            last_timestamp = timestamp;
        }
    }
}

#[tokio::test]
async fn text_lines_are_whole_and_in_each_clients_order_under_concurrent_load() {
    lines_are_whole_and_in_order("text").await;
}

#[tokio::test]
async fn json_lines_are_whole_and_in_each_clients_order_under_concurrent_load() {
    lines_are_whole_and_in_order("json").await;
}
