#!/usr/bin/env bash
# Runs every test: installs what the tests need (the broker, the Python readers), then the
# unit, golden and end-to-end tests. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

export INGOT_STATE_DIR="${INGOT_STATE_DIR:-$HOME/.cache/ingot}"
# One persistent target dir, so repeated runs on the same machine rebuild incrementally.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$INGOT_STATE_DIR/target}"
mkdir -p "$INGOT_STATE_DIR"

# The Kafka-protocol broker the end-to-end tests start (one per test, on a free port).
scripts/broker.sh install
export INGOT_TANSU="$(scripts/broker.sh path)"

# The Iceberg REST catalog the REST tests start (one per test, on a free port).
scripts/rest-catalog.sh install
export INGOT_RUSTBERG="$(scripts/rest-catalog.sh path)"

# Debian packages: OpenSSL headers to build, PostgreSQL for the JDBC-compatible catalog test
# (tests start their own, as the postgres user, in a temp dir), stunnel and openssl for the
# Kafka-over-TLS test.
scripts/system-deps.sh build test

# Independent Iceberg readers for the interop tests, a real S3 server (moto) for the
# object-storage tests and a real Glue API (MiniStack) for the Glue catalog tests.
VENV="$INGOT_STATE_DIR/venv"
if ! "$VENV/bin/python" -c "import pyiceberg, pyiceberg_core, pyarrow, sqlalchemy, psycopg2, duckdb, duckdb_extension_iceberg, pytz, jsonschema, rfc3339_validator, prometheus_client, moto.server, duckdb_extension_httpfs, ministack, boto3, yaml" 2>/dev/null; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet 'pyiceberg[sql-sqlite,sql-postgres,pyarrow,pyiceberg-core]==0.12.*' \
    'duckdb==1.5.5' 'duckdb-extension-iceberg==1.5.5' 'duckdb-extension-avro==1.5.5' \
    'duckdb-extension-parquet==1.5.5' pytz 'jsonschema[format]==4.26.*' referencing rfc3339-validator \
    'prometheus_client==0.26.*' 'moto[server]==5.2.*' 'duckdb-extension-httpfs==1.5.5' \
    'ministack==1.5.33' 'boto3==1.*' 'pyyaml==6.*'
fi
export INGOT_TEST_PYTHON="$VENV/bin/python"

# The Compose specification's JSON schema, for the reference stack's offline check (it ships
# in the npm package dclint; only the package's files are needed, not an install).
COMPOSE_SCHEMA="$INGOT_STATE_DIR/dclint-3.1.0/schemas/compose.schema.json"
if [ ! -f "$COMPOSE_SCHEMA" ]; then
  (cd "$INGOT_STATE_DIR" && npm pack --silent dclint@3.1.0 >/dev/null && mkdir -p dclint-3.1.0 \
    && tar xzf dclint-3.1.0.tgz -C dclint-3.1.0 --strip-components=1 && rm dclint-3.1.0.tgz)
fi
export INGOT_COMPOSE_SCHEMA="$COMPOSE_SCHEMA"

cargo fmt --all --check
cargo build --workspace --tests --locked
# End-to-end tests each run a broker and ingot processes: two at a time on two cores.
cargo test --workspace --locked -- --test-threads 2
