//! The reference stack (`docker-compose.yml`, `Dockerfile`, `deploy/`) is tested offline: the
//! compose file against the Compose specification's schema and the stack's rules (pinned
//! images, mounted files present) — a broken file fails the same check — ingot's config by
//! ingot itself, and Trino's catalog properties against the keys Trino documents.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;
use crate::readers::python;

fn root() -> PathBuf {
    PathBuf::from(manifest_dir())
}

/// The Compose specification's schema: `INGOT_COMPOSE_SCHEMA`, which `scripts/test.sh` sets
/// (it unpacks the npm package `dclint`).
fn schema() -> PathBuf {
    std::env::var("INGOT_COMPOSE_SCHEMA")
        .map(PathBuf::from)
        .expect("INGOT_COMPOSE_SCHEMA names the Compose schema (scripts/test.sh sets it)")
}

/// (passes, the problems printed).
fn check_compose(file: &Path) -> (bool, String) {
    let out = Command::new(python())
        .arg(root().join("tests/interop/validate_compose.py"))
        .arg(file)
        .arg(schema())
        .output()
        .unwrap();
    assert!(out.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into())
}

#[test]
fn the_reference_stack_is_a_valid_compose_file_and_a_broken_one_is_caught() {
    let (ok, problems) = check_compose(&root().join("docker-compose.yml"));
    assert!(ok, "docker-compose.yml:\n{problems}");

    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("deploy/trino/catalog")).unwrap();
    for file in ["deploy/ingot.toml", "deploy/trino/catalog/lake.properties"] {
        std::fs::copy(root().join(file), dir.path().join(file)).unwrap();
    }
    let broken = [
        ("a misspelt key", text.replacen("    healthcheck:", "    healthchek:", 1), "healthchek"),
        (
            "ports as a string",
            text.replacen("    ports:\n      - \"9001:9001\"", "    ports: 9001", 1),
            "ports",
        ),
        ("an unpinned image", text.replace("postgres:16.9", "postgres:latest"), "not pinned"),
        ("a missing mount", text.replace("./deploy/ingot.toml", "./deploy/missing.toml"), "missing.toml"),
    ];
    for (what, variant, named) in broken {
        assert_ne!(variant, text, "{what}: the edit applies");
        let file = dir.path().join("docker-compose.yml");
        std::fs::write(&file, variant).unwrap();
        let (ok, problems) = check_compose(&file);
        assert!(!ok && problems.contains(named), "{what} passed the check:\n{problems}");
    }
}

#[test]
fn the_stack_config_is_checked_by_ingot_with_the_files_where_the_image_puts_them() {
    // The image copies the contracts and the SQL to /app (see the Dockerfile); here they are
    // in the checkout.
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    for copy in ["COPY proto/contracts /app/proto/contracts", "COPY sql /app/sql"] {
        assert!(dockerfile.contains(copy), "the Dockerfile no longer says `{copy}`");
    }
    let config = root().join("deploy/ingot.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let here = root().display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("ingot.toml");
    std::fs::write(&local, text.replace("\"/app/", &format!("\"{here}/"))).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_ingot")).arg("--config").arg(&local).arg("check").output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.contains("ok (1 topics, 2 transforms"), "{stdout}\n{stderr}");
    // And `ingot check` does fail on what it checks: a transform whose SQL file is missing.
    std::fs::write(&local, text.replace("\"/app/", &format!("\"{here}/")).replace("orders.sql", "nope.sql"))
        .unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_ingot")).arg("--config").arg(&local).arg("check").output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("nope.sql"));
}

/// Keys of Trino's Iceberg connector, its JDBC catalog and native S3 file system, as Trino's
/// documentation lists them (the ones a stack like this one sets).
const TRINO_KEYS: &[&str] = &[
    "connector.name",
    "iceberg.catalog.type",
    "iceberg.jdbc-catalog.catalog-name",
    "iceberg.jdbc-catalog.driver-class",
    "iceberg.jdbc-catalog.connection-url",
    "iceberg.jdbc-catalog.connection-user",
    "iceberg.jdbc-catalog.connection-password",
    "iceberg.jdbc-catalog.default-warehouse-dir",
    "iceberg.rest-catalog.uri",
    "iceberg.rest-catalog.warehouse",
    "fs.native-s3.enabled",
    "s3.endpoint",
    "s3.region",
    "s3.path-style-access",
    "s3.aws-access-key",
    "s3.aws-secret-key",
];

#[test]
fn trinos_catalog_properties_use_documented_keys_and_ingots_catalog_name() {
    let text = std::fs::read_to_string(root().join("deploy/trino/catalog/lake.properties")).unwrap();
    let pairs: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once('=').unwrap_or_else(|| panic!("not key=value: {l}")))
        .collect();
    for (key, _) in &pairs {
        assert!(TRINO_KEYS.contains(key), "`{key}` is not a key Trino documents for this catalog");
    }
    let value = |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let ingot = std::fs::read_to_string(root().join("deploy/ingot.toml")).unwrap();
    assert!(ingot.contains(&format!("name = \"{}\"", value("iceberg.jdbc-catalog.catalog-name").unwrap())));
    assert!(ingot.contains(&format!(
        "warehouse = \"{}\"",
        value("iceberg.jdbc-catalog.default-warehouse-dir").unwrap()
    )));
    // No secret is written into the file: Trino reads them from the environment.
    for key in ["iceberg.jdbc-catalog.connection-password", "s3.aws-secret-key"] {
        assert!(value(key).unwrap().starts_with("${ENV:"), "{key} holds a literal secret");
    }
}
