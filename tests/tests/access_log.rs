//! The access log's output (server/src/logging.rs): a standard error nobody reads never stops
//! the server from answering, a line that cannot be queued is counted, and a graceful stop
//! writes every line, in text and JSON.

use futures_util::stream::{self, StreamExt};
use portcullis_config::vars;
use portcullis_tests::{client, Server, ServerBuilder};

fn anonymous() -> ServerBuilder {
    ServerBuilder::new().env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
}

/// Sends anonymous `GET /v1/meta` for each `i` in `range`, `concurrency` at a time, over one
/// client (building a client per request would dominate the test), each with the request id
/// `{prefix}-{i}` padded to 64 characters (so the log lines are long); asserts each is
/// answered 200 with its id.
async fn send_all(
    server: &Server,
    prefix: &str,
    range: std::ops::Range<usize>,
    concurrency: usize,
) {
    let http = client();
    let url = server.url("/v1/meta");
    stream::iter(range)
        .for_each_concurrent(concurrency, |i| {
            let (http, url) = (&http, &url);
            async move {
                let id = format!("{prefix}-{i:0>width$}", width = 63 - prefix.len());
                let reply = http
                    .get(url)
                    .header("x-request-id", &id)
                    .send()
                    .await
                    .unwrap_or_else(|err| panic!("request {i}: {err}"));
                assert_eq!(reply.status(), 200, "request {i}");
                assert_eq!(
                    reply.headers().get("x-request-id").map(|v| v.as_bytes()),
                    Some(id.as_bytes())
                );
            }
        })
        .await;
}

#[tokio::test]
async fn a_standard_error_nobody_reads_does_not_block_requests_and_drops_are_counted() {
    let server = anonymous().unread_stderr().start().await;
    // The pipe holds 64 KiB: the first few hundred lines fill it, and a server that wrote its
    // log from the worker would stop answering there.
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        send_all(&server, "unread", 0..1_000, 1),
    )
    .await;
    assert!(
        answered.is_ok(),
        "1,000 requests were not answered in 120 s"
    );
    // About 330 bytes a line: 10,000 lines overflow the pipe and the 2 MiB queue, and every
    // line that did not fit is counted rather than waited for.
    send_all(&server, "unread", 1_000..10_000, 8).await;
    let dropped = server
        .metric("portcullis_log_lines_dropped_total", &[])
        .await;
    assert!(
        dropped >= 1_000.0,
        "only {dropped} dropped lines were counted"
    );
}

async fn every_line_is_written_at_a_graceful_stop(format: &str) {
    let server = anonymous().env(vars::LOG_FORMAT, format).start().await;
    send_all(&server, "stop", 0..500, 4).await;
    let (code, log) = server.stop().await;
    assert_eq!(code, Some(0), "LOG_FORMAT={format}: exit code\n{log}");
    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("portcullis::access"))
        .collect();
    assert_eq!(access.len(), 500, "LOG_FORMAT={format}: access lines");
    for i in 0..500 {
        let id = format!("stop-{i:0>59}");
        assert_eq!(
            access.iter().filter(|l| l.contains(&id)).count(),
            1,
            "LOG_FORMAT={format}: request {id}"
        );
    }
    if format == "json" {
        for line in log.lines() {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("not one JSON object a line ({err}): {line}"));
            assert!(value.is_object(), "{line}");
        }
    }
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains("portcullis stopped"),
        "LOG_FORMAT={format}: the last line is {last:?}"
    );
}

#[tokio::test]
async fn every_text_line_is_written_at_a_graceful_stop() {
    every_line_is_written_at_a_graceful_stop("text").await;
}

#[tokio::test]
async fn every_json_line_is_written_at_a_graceful_stop() {
    every_line_is_written_at_a_graceful_stop("json").await;
}
