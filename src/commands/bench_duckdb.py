"""DuckDB on the work `ingot bench transforms` measures: silver (the demo's silver SQL, rules,
dedup on idempotency_key keeping the first row by Kafka position) and the two gold tables,
from the new bronze Parquet files to Parquet (ZSTD) files. Prints one JSON line.

Usage: python bench_duckdb.py <out dir> <bronze parquet file>...
Exit code 3: the duckdb package is not installed."""
import json
import sys
import time

try:
    import duckdb
except ImportError:
    sys.exit(3)

out, files = sys.argv[1], sys.argv[2:]
con = duckdb.connect()
con.execute("SET threads = 2")
started = time.perf_counter()
con.execute(
    """
    CREATE TABLE silver AS
    SELECT DISTINCT ON (idempotency_key) * EXCLUDE (_rule_violation)
    FROM (
      SELECT idempotency_key, order_id, customer_id, status, currency, occurred_at,
        CAST(CAST(total.units * 100 + total.nanos / 10000000 AS DECIMAL(20, 2)) / 100 AS DECIMAL(18, 2)) AS total_amount,
        CAST(len(items) AS INT) AS line_items, _kafka_topic, _kafka_partition, _kafka_offset,
        CASE
          WHEN customer_id = '' THEN 'customer_present'
          WHEN status = 'ORDER_STATUS_UNSPECIFIED' THEN 'status_known'
          WHEN len(items) = 0 THEN 'has_line_items'
        END AS _rule_violation
      FROM read_parquet(?)
    )
    WHERE _rule_violation IS NULL
    ORDER BY idempotency_key, _kafka_partition, _kafka_offset
    """,
    [files],
)
con.execute(f"COPY silver TO '{out}/silver.parquet' (FORMAT parquet, COMPRESSION zstd)")
con.execute(
    f"""COPY (
      SELECT date_trunc('hour', occurred_at) AS window_start, currency, count(*) AS orders,
        sum(total_amount) AS revenue, count(DISTINCT customer_id) AS customers
      FROM silver GROUP BY 1, 2
    ) TO '{out}/revenue_hourly.parquet' (FORMAT parquet, COMPRESSION zstd)"""
)
con.execute(
    f"""COPY (
      SELECT date_trunc('day', occurred_at) AS window_start, customer_id, count(*) AS orders,
        sum(total_amount) AS spent, sum(line_items) AS line_items
      FROM silver GROUP BY 1, 2
    ) TO '{out}/customer_daily.parquet' (FORMAT parquet, COMPRESSION zstd)"""
)
seconds = time.perf_counter() - started
rows = con.execute("SELECT count(*) FROM silver").fetchone()[0]
print(json.dumps({"seconds": seconds, "silver_rows": rows, "duckdb": duckdb.__version__}))
