//! Golden tests of the pipeline's SQL files: each runs on a small fixed input and its output,
//! sorted and pretty-printed, must equal the file under `tests/golden/`. `INGOT_BLESS=1`
//! rewrites the golden files (review the diff before committing).

use std::path::{Path, PathBuf};

use datafusion::prelude::SessionContext;
use ingot_transforms::{collect, memory_table, replace_table};

fn repo() -> PathBuf {
    Path::new(&manifest_dir()).parent().unwrap().to_path_buf()
}

async fn check(sql_file: &str, input: &str, fixture: &str, golden: &str) {
    let ctx = SessionContext::new();
    let fixture_sql =
        std::fs::read_to_string(repo().join("transforms/tests/fixtures").join(fixture)).unwrap();
    let (schema, rows) = collect(&ctx, &fixture_sql).await.unwrap();
    replace_table(&ctx, input, memory_table(schema, rows).unwrap()).unwrap();
    let sql = std::fs::read_to_string(repo().join("sql").join(sql_file)).unwrap();
    let sorted = format!("SELECT * FROM ({}) ORDER BY 1, 2", sql.trim().trim_end_matches(';'));
    let (_, out) = collect(&ctx, &sorted).await.unwrap();
    let mut text = arrow_cast::pretty::pretty_format_batches(&out).unwrap().to_string();
    text.push('\n');
    let path = repo().join("transforms/tests/golden").join(golden);
    if std::env::var_os("INGOT_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(text, expected, "{sql_file} on {fixture} differs from {}", path.display());
}

#[tokio::test]
async fn silver_orders() {
    check("silver/orders.sql", "bronze.orders", "bronze_orders.sql", "silver_orders.txt").await;
}

#[tokio::test]
async fn gold_revenue_hourly() {
    check("gold/revenue_hourly.sql", "silver.orders", "silver_orders.sql", "gold_revenue_hourly.txt").await;
}

#[tokio::test]
async fn gold_customer_daily() {
    check("gold/customer_daily.sql", "silver.orders", "silver_orders.sql", "gold_customer_daily.txt").await;
}

/// The package directory, read when the test runs: a test binary another checkout built into
/// a shared target directory must read this checkout's files, not that one's.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
}
