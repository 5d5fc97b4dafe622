//! The gRPC benchmark's load generator: a `tonic` client (the server's own generated client, so
//! the messages cannot drift from the protos) that keeps `--concurrency` calls in flight over
//! `--connections` HTTP/2 connections for a warm-up and then a measured window, and prints
//! calls/s, objects/s, p50 and p99, and, given server pids, their CPU time per call.
//!
//! Usage: `grpc_load --addr <ip:port> [--kind search-by-id|batch] [--concurrency 32]
//! [--connections 1] [--duration 10s] [--warmup 1s] [--authorization 'Bearer <token>']
//! [--collection Bench] [--id <uuid>] [--batch-size 1000] [--pids <pid>[,<pid>...]]
//! [--clk-tck 100]`.
//!
//! `search-by-id` is a unary `Search` for one object by its id (an `_id` equality filter, as the
//! Python client's `fetch_object_by_id` sends it); `batch` is a `BatchObjects` of
//! `--batch-size` small objects whose ids are fixed per call slot, so the store replaces them
//! and does not grow during the run.
//!
//! Prints `calls <n>`, `errors <n>`, `calls_per_sec <rate>`, `objects_per_sec <rate>`,
//! `p50_ms <ms>`, `p99_ms <ms>` and `cpu_us_per_call <us>` (`-` without `--pids`), one a line;
//! the first error's status goes to standard error.

#![allow(deprecated)] // SearchRequest.uses_125_api: deprecated, and what every client sends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_server::grpc::pb;
use portcullis_server::grpc::pb::weaviate_client::WeaviateClient;
use prost_types::value::Kind;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// What each call does.
#[derive(Clone, Copy, PartialEq)]
enum CallKind {
    SearchById,
    Batch,
}

/// The command line.
struct Options {
    addr: String,
    kind: CallKind,
    concurrency: usize,
    connections: usize,
    duration: Duration,
    warmup: Duration,
    authorization: Option<MetadataValue<tonic::metadata::Ascii>>,
    collection: String,
    id: String,
    batch_size: usize,
    pids: Vec<u32>,
    clk_tck: f64,
}

const USAGE: &str = "usage: grpc_load --addr <ip:port> [--kind search-by-id|batch] \
    [--concurrency N] [--connections N] [--duration 10s] [--warmup 1s] \
    [--authorization 'Bearer <token>'] [--collection Bench] [--id <uuid>] [--batch-size N] \
    [--pids pid,pid] [--clk-tck 100]";

fn parse_duration(text: &str) -> Duration {
    let (number, unit) = text.split_at(text.trim_end_matches(char::is_alphabetic).len());
    let n: f64 = number.parse().expect(USAGE);
    match unit {
        "ms" => Duration::from_secs_f64(n / 1e3),
        "s" | "" => Duration::from_secs_f64(n),
        "m" => Duration::from_secs_f64(n * 60.0),
        _ => panic!("{USAGE}"),
    }
}

fn options() -> Options {
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    let mut raw = std::env::args().skip(1);
    while let Some(name) = raw.next() {
        let name = name.strip_prefix("--").expect(USAGE).to_owned();
        let value = raw.next().expect(USAGE);
        args.insert(name, value);
    }
    let take = |name: &str, default: &str| {
        args.get(name)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    for name in args.keys() {
        assert!(
            [
                "addr",
                "kind",
                "concurrency",
                "connections",
                "duration",
                "warmup",
                "authorization",
                "collection",
                "id",
                "batch-size",
                "pids",
                "clk-tck"
            ]
            .contains(&name.as_str()),
            "unknown option --{name}\n{USAGE}"
        );
    }
    Options {
        addr: args.get("addr").cloned().expect(USAGE),
        kind: match take("kind", "search-by-id").as_str() {
            "search-by-id" => CallKind::SearchById,
            "batch" => CallKind::Batch,
            other => panic!("unknown --kind {other}\n{USAGE}"),
        },
        concurrency: take("concurrency", "32").parse().expect(USAGE),
        connections: take("connections", "1").parse().expect(USAGE),
        duration: parse_duration(&take("duration", "10s")),
        warmup: parse_duration(&take("warmup", "1s")),
        authorization: args
            .get("authorization")
            .filter(|value| !value.is_empty())
            .map(|value| value.parse().expect("an ASCII authorization value")),
        collection: take("collection", "Bench"),
        id: take("id", "5b6a9c2e-0000-4000-8000-000000000001"),
        batch_size: take("batch-size", "1000").parse().expect(USAGE),
        pids: args
            .get("pids")
            .map(|pids| {
                pids.split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| p.parse().expect("a pid"))
                    .collect()
            })
            .unwrap_or_default(),
        clk_tck: take("clk-tck", "100").parse().expect(USAGE),
    }
}

/// The `Search` for one object by id, as current clients send it.
fn search_by_id(options: &Options) -> pb::SearchRequest {
    pb::SearchRequest {
        collection: options.collection.clone(),
        limit: 1,
        uses_123_api: true,
        uses_125_api: true,
        uses_127_api: true,
        filters: Some(pb::Filters {
            operator: pb::filters::Operator::Equal as i32,
            target: Some(pb::FilterTarget {
                target: Some(pb::filter_target::Target::Property("_id".into())),
            }),
            test_value: Some(pb::filters::TestValue::ValueText(options.id.clone())),
            ..Default::default()
        }),
        metadata: Some(pb::MetadataRequest {
            uuid: true,
            ..Default::default()
        }),
        properties: Some(pb::PropertiesRequest {
            non_ref_properties: vec!["title".into(), "count".into()],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A batch of `size` small objects; `slot` picks the ids, so each call slot rewrites its own.
fn batch(options: &Options, slot: usize) -> pb::BatchObjectsRequest {
    let objects = (0..options.batch_size)
        .map(|i| {
            let mut fields = BTreeMap::new();
            fields.insert(
                "title".to_owned(),
                prost_types::Value {
                    kind: Some(Kind::StringValue(format!("object {i}"))),
                },
            );
            fields.insert(
                "count".to_owned(),
                prost_types::Value {
                    kind: Some(Kind::NumberValue(i as f64)),
                },
            );
            pb::BatchObject {
                uuid: format!("{slot:08x}-0000-4000-8000-{i:012x}"),
                collection: options.collection.clone(),
                properties: Some(pb::batch_object::Properties {
                    non_ref_properties: Some(prost_types::Struct { fields }),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    pb::BatchObjectsRequest {
        objects,
        consistency_level: None,
    }
}

/// User + system CPU ticks of the processes, from /proc/<pid>/stat (fields 14 and 15).
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_else(|err| panic!("/proc/{pid}/stat: {err}"));
            // The command name (field 2) may hold spaces; the fields after its ')' do not.
            let after = &stat[stat.rfind(')').expect("stat format") + 2..];
            let fields: Vec<&str> = after.split_whitespace().collect();
            // `after` starts at field 3, so fields 14 and 15 are at 11 and 12.
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
        })
        .sum()
}

/// What the callers share.
struct Tally {
    measuring: AtomicBool,
    stop: AtomicBool,
    errors: AtomicU64,
    first_error: Mutex<Option<tonic::Status>>,
}

async fn caller(
    mut client: WeaviateClient<Channel>,
    options: Arc<Options>,
    slot: usize,
    tally: Arc<Tally>,
) -> Vec<u32> {
    let search = search_by_id(&options);
    let batch = (options.kind == CallKind::Batch).then(|| batch(&options, slot));
    let mut micros = Vec::with_capacity(1 << 16);
    while !tally.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let result = match &batch {
            None => {
                let mut request = tonic::Request::new(search.clone());
                if let Some(auth) = &options.authorization {
                    request.metadata_mut().insert("authorization", auth.clone());
                }
                // A reply without the object is a failed call, not a fast one.
                client
                    .search(request)
                    .await
                    .and_then(|reply| match reply.get_ref().results.len() {
                        1 => Ok(()),
                        n => Err(tonic::Status::not_found(format!("{n} results, not 1"))),
                    })
            }
            Some(batch) => {
                let mut request = tonic::Request::new(batch.clone());
                if let Some(auth) = &options.authorization {
                    request.metadata_mut().insert("authorization", auth.clone());
                }
                client.batch_objects(request).await.and_then(|reply| {
                    match reply.get_ref().errors.first() {
                        None => Ok(()),
                        Some(error) => Err(tonic::Status::internal(format!(
                            "object {}: {}",
                            error.index, error.error
                        ))),
                    }
                })
            }
        };
        if !tally.measuring.load(Ordering::Relaxed) {
            continue;
        }
        match result {
            Ok(()) => micros.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32),
            Err(status) => {
                tally.errors.fetch_add(1, Ordering::Relaxed);
                let mut first = tally.first_error.lock().expect("first error");
                first.get_or_insert(status);
            }
        }
    }
    micros
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1e3
}

fn main() {
    let options = Arc::new(options());
    // One thread: the load generator is pinned to one CPU, as wrk -t1 is.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let mut channels = Vec::with_capacity(options.connections);
        for _ in 0..options.connections.max(1) {
            let channel = Channel::from_shared(format!("http://{}", options.addr))
                .expect("address")
                .connect()
                .await
                .unwrap_or_else(|err| panic!("connect to {}: {err}", options.addr));
            channels.push(channel);
        }
        let tally = Arc::new(Tally {
            measuring: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
        });
        let callers: Vec<_> = (0..options.concurrency.max(1))
            .map(|slot| {
                let client = WeaviateClient::new(channels[slot % channels.len()].clone())
                    .max_decoding_message_size(64 << 20)
                    .max_encoding_message_size(64 << 20);
                tokio::spawn(caller(client, options.clone(), slot, tally.clone()))
            })
            .collect();

        tokio::time::sleep(options.warmup).await;
        let ticks_before = cpu_ticks(&options.pids);
        let started = Instant::now();
        tally.measuring.store(true, Ordering::Relaxed);
        tokio::time::sleep(options.duration).await;
        tally.measuring.store(false, Ordering::Relaxed);
        let elapsed = started.elapsed().as_secs_f64();
        let ticks_after = cpu_ticks(&options.pids);
        tally.stop.store(true, Ordering::Relaxed);

        let mut micros = Vec::new();
        for caller in callers {
            micros.extend(caller.await.expect("caller task"));
        }
        micros.sort_unstable();
        let errors = tally.errors.load(Ordering::Relaxed);
        let calls = micros.len() as u64;
        let per_call = match options.kind {
            CallKind::SearchById => 1,
            CallKind::Batch => options.batch_size,
        };
        println!("calls {calls}");
        println!("errors {errors}");
        println!("calls_per_sec {:.1}", calls as f64 / elapsed);
        println!(
            "objects_per_sec {:.1}",
            (calls * per_call as u64) as f64 / elapsed
        );
        println!("p50_ms {:.3}", percentile(&micros, 50.0));
        println!("p99_ms {:.3}", percentile(&micros, 99.0));
        if options.pids.is_empty() || calls == 0 {
            println!("cpu_us_per_call -");
        } else {
            let seconds = (ticks_after - ticks_before) as f64 / options.clk_tck;
            println!("cpu_us_per_call {:.2}", seconds * 1e6 / calls as f64);
        }
        let first_error = tally.first_error.lock().expect("first error").take();
        if let Some(status) = first_error {
            eprintln!(
                "grpc_load: first error: {:?} {}",
                status.code(),
                status.message()
            );
        }
    });
}
