//! Independent Iceberg readers (PyIceberg and DuckDB, in the test venv) run as processes.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::{Workspace, manifest_dir};

pub fn python() -> PathBuf {
    match std::env::var("INGOT_TEST_PYTHON") {
        Ok(p) => p.into(),
        Err(_) => PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/ingot/venv/bin/python"),
    }
}

/// `python tests/interop/<script> [leading…] <catalog uri> <warehouse>`: one of the interop
/// scripts pointed at the workspace's catalog (and, for an S3 warehouse, given the AWS
/// environment that reaches it); the caller adds the rest of the arguments.
pub fn interop_script(ws: &Workspace, script: &str, leading: &[&str]) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(PathBuf::from(manifest_dir()).join("tests/interop").join(script))
        .args(leading)
        .arg(ws.catalog_uri())
        .arg(ws.warehouse_uri())
        .envs(ws.reader_env());
    cmd
}

#[derive(Debug, Clone, Copy)]
pub enum Engine {
    PyIceberg,
    DuckDb,
}

/// Which snapshot a reader reads.
#[derive(Debug, Clone, Copy)]
pub enum At {
    Current,
    Snapshot(i64),
    /// The reader resolves the instant itself.
    Millis(i64),
}

/// What the reader saw: the snapshot it read and the rows (`None` when it found no
/// snapshot for the instant), each row the chosen columns as integers.
pub fn read_rows(
    ws: &Workspace,
    engine: Engine,
    table: &str,
    columns: &str,
    at: At,
) -> (Option<i64>, Option<Vec<Vec<i64>>>) {
    let engine_name = match engine {
        Engine::PyIceberg => "pyiceberg",
        Engine::DuckDb => "duckdb",
    };
    let mut cmd = interop_script(ws, "read_rows.py", &[engine_name]);
    cmd.args([table, columns]);
    match at {
        At::Current => {}
        At::Snapshot(id) => {
            cmd.args(["--snapshot", &id.to_string()]);
        }
        At::Millis(ms) => {
            cmd.args(["--as-of-ms", &ms.to_string()]);
        }
    }
    let output = cmd.output().expect("run python (scripts/test.sh makes the venv; or set INGOT_TEST_PYTHON)");
    assert!(output.status.success(), "{engine:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = json["rows"].as_array().map(|rows| {
        let mut rows: Vec<Vec<i64>> = rows
            .iter()
            .map(|r| r.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect())
            .collect();
        rows.sort();
        rows
    });
    (json["snapshot_id"].as_i64(), rows)
}
