#!/usr/bin/env bash
# The whole pipeline on the embedded default, from nothing: installs and starts a local
# broker if none is running, produces sample events (some malformed, duplicated and late),
# ingests until caught up, and shows what landed.
set -euo pipefail
cd "$(dirname "$0")/.."

export INGOT_STATE_DIR="${INGOT_STATE_DIR:-$HOME/.cache/ingot}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$INGOT_STATE_DIR/target}"
COUNT="${COUNT:-20000}"

scripts/broker.sh start 9092
scripts/system-deps.sh build
cargo build --locked --bin ingot
ingot() { "$CARGO_TARGET_DIR/debug/ingot" --config ingot.toml "$@"; }

ingot produce --topic orders --count "$COUNT" --bad-ratio 0.02 --duplicate-ratio 0.05 --late-ratio 0.03
ingot produce --topic clicks --count "$COUNT" --bad-ratio 0.02
echo
ingot run --until-caught-up
echo
ingot tables
echo
ingot snapshots bronze.orders
echo
# The same question, asked of the table as it is now and as of its first snapshot.
FIRST=$(ingot snapshots bronze.orders | awk 'NR==2 {print $1}')
ingot query "SELECT currency, count(*) AS orders FROM bronze.orders GROUP BY currency ORDER BY currency"
ingot query "SELECT count(*) AS orders_in_first_snapshot FROM bronze.orders FOR VERSION AS OF $FIRST"
echo
# Gold, computed from deduplicated silver by the SQL in sql/gold/.
ingot query "SELECT window_start, currency, orders, revenue FROM gold.revenue_hourly ORDER BY window_start DESC, currency LIMIT 6"
echo
ingot maintain compact --dry-run
