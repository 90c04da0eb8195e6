//! The command line as a tool in a pipe: a reader that stops early, a log shipper that reads
//! every stderr line as JSON.

use ingot_lake::Lake;

use crate::harness::*;
use crate::lake::{append, create, rows};

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_closes_stdout_early_ends_the_command_quietly() {
    let ws = Workspace::lake(None);
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    create(&lake, "lake.events").await;
    append(&lake, "lake.events", &rows(0..10, 0, 1)).await;
    // `ingot query … | head -1` and `ingot tables | head -0`: the reader takes what it wants
    // and goes; ingot ends with success and says nothing about the pipe.
    for (args, take) in [
        (&["query", "SELECT * FROM range(1000000)", "--format", "csv"][..], 1),
        (&["tables"][..], 0),
        (&["snapshots", "lake.events"][..], 0),
    ] {
        let mut child = ws
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        for _ in 0..take {
            std::io::BufRead::read_line(&mut stdout, &mut String::new()).unwrap();
        }
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {}\n{err}", out.status);
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line_down_to_the_final_error() {
    let ws = Workspace::lake(None);
    let json = [("INGOT_LOG_FORMAT", "json"), ("INGOT_LOG", "info")];
    let (ok, _, err) = ws.try_ingot_with_env(&["query", "SELECT * FROM lake.no_such_table"], &json);
    assert!(!ok);
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let last = lines.last().expect("the failure is logged");
    assert_eq!(last["level"], "ERROR");
    assert!(last["error"].as_str().unwrap().contains("no_such_table"), "{last}");
}
