//! `ingot contract check|diff`: contract edits judged against a git revision of the contract
//! files and the config (as CI runs it) and against the bronze tables, with file and line.

use std::path::Path;
use std::process::Command;

use crate::harness::*;
use crate::redrive::copy_dir;

fn git(repo: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.email=ci@example.com", "-c", "user.name=ci", "-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .unwrap();
    assert!(status.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&status.stderr));
}

/// Runs `ingot --config <repo>/ingot.toml <args>`: (success, stdout + stderr).
fn ingot(repo: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ingot"))
        .arg("--config")
        .arg(repo.join("ingot.toml"))
        .args(args)
        .env("INGOT_LOG", "warn")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn edit(file: &Path, from: &str, to: &str) -> usize {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{from} in {}", file.display());
    let text = text.replacen(from, to, 1);
    std::fs::write(file, &text).unwrap();
    // The 1-based line the edit landed on.
    text[..text.find(to).unwrap()].lines().count() + usize::from(!to.starts_with('\n'))
}

#[test]
fn edits_are_judged_against_a_git_revision_with_file_and_line() {
    let repo = tempfile::tempdir().unwrap();
    let repo = repo.path();
    copy_dir(&demo_contracts(), &repo.join("contracts"));
    let config = format!("[contracts]\ndir = \"contracts\"\n{ORDERS_TOPIC}");
    std::fs::write(repo.join("ingot.toml"), config).unwrap();
    git(repo, &["init", "-q"]);
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", "contracts"]);
    let proto = repo.join("contracts/ingot/demo/v1/orders.proto");

    let (ok, out) = ingot(repo, &["contract", "check", "--against", "HEAD"]);
    assert!(ok && out.contains("0 breaking, 0 additive"), "{out}");

    let line = edit(&proto, "  string trace_id = 10;\n", "  string trace_id = 10;\n  string channel = 20;\n");
    let (ok, out) = ingot(repo, &["contract", "check", "--against", "HEAD"]);
    assert!(ok, "an added field passes: {out}");
    assert!(
        out.contains(&format!(
            "orders.proto:{}: additive: ingot.demo.v1.OrderEvent.channel (= 20) added",
            line + 1
        )),
        "{out}"
    );

    let line = edit(&proto, "  string currency = 8;", "  int32 currency = 8;");
    let (ok, out) = ingot(repo, &["contract", "check", "--against", "HEAD"]);
    assert!(!ok, "a retyped field fails: {out}");
    let expected = format!(
        "ingot/demo/v1/orders.proto:{line}: BREAKING: ingot.demo.v1.OrderEvent.currency changed type from string to int32"
    );
    assert!(out.contains(&expected), "{expected}\n{out}");
    assert!(out.contains("1 breaking contract change(s) against HEAD"), "{out}");
    git(repo, &["checkout", "-q", "--", "contracts"]);

    // A new `required` rule on a field producers may leave unset breaks them too.
    let rule = "\n[[topics.rules]]\nname = \"customer_known\"\nfield = \"customer_id\"\nrequired = true\n";
    let mut text = std::fs::read_to_string(repo.join("ingot.toml")).unwrap();
    text.push_str(rule);
    std::fs::write(repo.join("ingot.toml"), &text).unwrap();
    let rule_line = text.lines().position(|l| l.contains("\"customer_known\"")).unwrap() + 1;
    let (ok, out) = ingot(repo, &["contract", "check", "--against", "HEAD"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "ingot.toml:{rule_line}: BREAKING: rule `customer_known` makes the existing field"
        )),
        "{out}"
    );
    // Once committed, the rule is part of the revision: nothing changed against it.
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", "rule"]);
    let (ok, out) = ingot(repo, &["contract", "check", "--against", "HEAD"]);
    assert!(ok, "{out}");

    let (ok, out) = ingot(repo, &["contract", "check", "--against", "no-such-revision"]);
    assert!(!ok && out.contains("no-such-revision"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renamed_field_is_a_break_against_the_bronze_table_and_diff_shows_the_restart() {
    let broker = Broker::start();
    let contracts = tempfile::tempdir().unwrap();
    copy_dir(&demo_contracts(), contracts.path());
    let ws = Workspace::new(&broker, contracts.path(), 100_000, ORDERS_TOPIC);
    ws.ingot(&["produce", "--topic", "orders", "--count", "50"]);
    ws.ingot(&["run", "--until-caught-up"]);
    let (ok, out, _) = ws.try_ingot(&["contract", "check"]);
    assert!(ok && out.contains("0 breaking, 0 additive change(s) against tables"), "{out}");
    assert!(ws.ingot(&["contract", "diff"]).contains("bronze.orders (orders): unchanged"));

    let proto = contracts.path().join("ingot/demo/v1/orders.proto");
    edit(&proto, "  string trace_id = 10;", "  string trace = 10;");
    let (ok, out, err) = ws.try_ingot(&["contract", "check"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("BREAKING: bronze.orders: column trace_id is no longer in ingot.demo.v1.OrderEvent"),
        "{out}"
    );
    assert!(out.contains("additive: bronze.orders: a restart adds column trace"), "{out}");
    assert!(err.contains("1 breaking contract change(s) against tables"), "{err}");
    let diff = ws.ingot(&["contract", "diff"]);
    assert!(
        diff.contains("  + trace\n") && diff.contains("  = trace_id (no longer in the contract"),
        "{diff}"
    );

    // A retype is what a restart would refuse: the diff says so, the check fails on it.
    edit(&proto, "  string currency = 8;", "  int64 currency = 8;");
    let diff = ws.ingot(&["contract", "diff"]);
    assert!(diff.contains("a restart would stop") && diff.contains("currency"), "{diff}");
}
