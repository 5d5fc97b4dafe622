//! `bench/pool.py`, which the issue-10 verdict in bench/README.md rests on: it pools each run's
//! own paired ratios from several `bench/run.sh` outputs and judges the pooled median against
//! the bar printed beside it. Run on made-up outputs whose answer is known.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn output(lines: &[&str]) -> String {
    let mut text = String::from("wrk -t1 -c32 -d5s, median of 3 runs\n\n| row | req/s |\n");
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// `bench/pool.py` run on `files`, each written to a file of its own.
fn run_pool(files: &[String]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = files
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let path = dir.path().join(format!("run-{i}.txt"));
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/pool.py"))
        .args(&paths)
        .output()
        .expect("python3 runs bench/pool.py")
}

/// The exit code and table of a run that wrote nothing to standard error.
fn pool(files: &[String]) -> (i32, String) {
    let out = run_pool(files);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn row<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .lines()
        .find(|line| line.starts_with(&format!("| {name} |")))
        .unwrap_or_else(|| panic!("no row {name:?} in\n{table}"))
}

#[test]
fn the_pooled_median_of_every_runs_own_ratios_is_judged_against_its_bar() {
    let first = output(&[
        "- gate cost: anonymous / bare = 0.90 (per run: 0.80, 0.88, 0.95) (bar >= 0.85)",
        "- static key / HAProxy static key = 1.54 (per run: 1.65, 1.54, 0.99) (bar > 1.0)",
        "- proxy / direct = 0.62 (per run: 0.54, 0.62, 0.70) (reported; no bar)",
    ]);
    let second = output(&[
        "- gate cost: anonymous / bare = 0.83 (per run: 0.83, 0.84, 0.82) (bar >= 0.85)",
        "- static key / HAProxy static key = 1.20 (per run: 1.20, 1.00, 1.30) (bar > 1.0)",
        "- proxy / direct = 0.58 (per run: 0.58, 0.50, 0.66) (reported; no bar)",
    ]);

    let (code, table) = pool(&[first.clone(), second]);
    // Six paired ratios each; the medians of the two outputs (0.90, 0.83) are not pooled.
    // gate: 0.80 0.82 0.83 0.84 0.88 0.95 -> 0.835, four under 0.85: missed.
    // Quartiles interpolate between the paired ratios.
    assert_eq!(
        row(&table, "gate cost: anonymous / bare"),
        "| gate cost: anonymous / bare | 0.835 | 0.82-0.87 | 6 | 4 | >= 0.85 | **no** |"
    );
    // HAProxy: 0.99 1.00 1.20 1.30 1.54 1.65 -> 1.25; "> 1.0" counts 1.00 as under.
    assert_eq!(
        row(&table, "static key / HAProxy static key"),
        "| static key / HAProxy static key | 1.250 | 1.05-1.48 | 6 | 2 | > 1.00 | yes |"
    );
    assert_eq!(
        row(&table, "proxy / direct"),
        "| proxy / direct | 0.600 | 0.55-0.65 | 6 | - | reported | - |"
    );
    assert!(table.contains("1 bar(s) not met"), "{table}");
    assert_eq!(code, 1, "a missed bar exits 1");

    let (code, table) = pool(&[first]);
    assert!(table.contains("0 bar(s) not met"), "{table}");
    assert_eq!(code, 0);
}

#[test]
fn an_output_without_per_run_ratios_is_refused() {
    let out = run_pool(&["bench: run 1 of 5\n".to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no per-run ratio"));
}

#[test]
fn a_median_halfway_between_two_ratios_meets_a_bar_it_equals() {
    // (0.58 + 1.22) / 2 is 0.8999999999999999 in floating point; printed to two decimals the
    // ratios put the median at the bar exactly.
    let only = output(&["- static key / anonymous = 0.90 (per run: 0.58, 1.22) (bar >= 0.90)"]);
    let (code, table) = pool(&[only]);
    assert_eq!(
        row(&table, "static key / anonymous"),
        "| static key / anonymous | 0.900 | 0.74-1.06 | 2 | 1 | >= 0.90 | yes |"
    );
    assert_eq!(code, 0);
}
