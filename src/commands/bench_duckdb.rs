//! The peer of `ingot bench transforms`: DuckDB doing the same silver and gold work on the same
//! new bronze files, when a Python with the `duckdb` package is at hand
//! (`INGOT_BENCH_PYTHON`, else `python3`).

use std::process::Command;

const SCRIPT: &str = include_str!("bench_duckdb.py");

/// What DuckDB took, or why it did not run.
pub enum DuckDbRun {
    Took { seconds: f64, silver_rows: u64, version: String },
    NotRun(String),
}

/// Runs the DuckDB equivalent over `files` (local Parquet paths).
pub fn run(files: &[String]) -> DuckDbRun {
    let python = std::env::var("INGOT_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => return DuckDbRun::NotRun(format!("no temp dir: {e}")),
    };
    let script = dir.path().join("bench_duckdb.py");
    if let Err(e) = std::fs::write(&script, SCRIPT) {
        return DuckDbRun::NotRun(format!("cannot write the script: {e}"));
    }
    let output = Command::new(&python).arg(&script).arg(dir.path()).args(files).output();
    let output = match output {
        Ok(output) => output,
        Err(e) => return DuckDbRun::NotRun(format!("cannot run {python}: {e}")),
    };
    if output.status.code() == Some(3) {
        return DuckDbRun::NotRun(format!("{python} has no duckdb package (pip install duckdb)"));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let parsed: Option<serde_json::Value> = text.lines().last().and_then(|l| serde_json::from_str(l).ok());
    match parsed {
        Some(v) if output.status.success() => DuckDbRun::Took {
            seconds: v["seconds"].as_f64().unwrap_or(0.0),
            silver_rows: v["silver_rows"].as_u64().unwrap_or(0),
            version: v["duckdb"].as_str().unwrap_or("?").to_string(),
        },
        _ => DuckDbRun::NotRun(format!("DuckDB failed: {}", String::from_utf8_lossy(&output.stderr).trim())),
    }
}
