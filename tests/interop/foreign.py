"""Another engine (PyIceberg) editing an ingot table, as a data team sharing the lake would.

usage: foreign.py <catalog uri> <warehouse> <table> <action> [<key column> <key value> <column>]

actions:
  append    append a copy of the first row, marked as foreign (see `mark`)
  correct   overwrite the row whose <key column> is <key value> with <column> changed
            (a copy-on-write correction: PyIceberg rewrites the files holding it)
  rewrite   overwrite the whole table with the same rows: fewer, bigger files (what a
            compaction by another engine does)

Prints JSON describing what was written.
"""
import decimal
import json
import sys

import pyarrow as pa
import pyarrow.compute as pc
from lake_catalog import open_catalog
from pyiceberg.expressions import EqualTo


def mark(table_name: str, row: pa.Table) -> pa.Table:
    """A foreign row no Kafka message stands behind: offset -1, and a fresh key."""
    def put(t: pa.Table, name: str, value) -> pa.Table:
        if name not in t.schema.names:
            return t
        i = t.schema.get_field_index(name)
        field = t.schema.field(i)
        return t.set_column(i, field, pa.array([value] * t.num_rows, type=field.type))

    row = put(row, "_kafka_offset", -1)
    if table_name.startswith("gold."):
        # A window counted again by hand: the same window and group with other values.
        return put(row, "orders", 1_000_000)
    if table_name == "ingot.quarantine":
        return put(row, "message_type", "foreign")
    return put(row, "idempotency_key", f"foreign-{table_name}")


def main() -> None:
    uri, warehouse, table_name, action = sys.argv[1:5]
    catalog = open_catalog(uri, warehouse)
    table = catalog.load_table(table_name)
    out = {"action": action}
    if action == "append":
        row = mark(table_name, table.scan(limit=1).to_arrow())
        table.append(row)
        out["rows"] = row.num_rows
    elif action == "correct":
        key_column, key_value, column = sys.argv[5:8]
        rows = table.scan(row_filter=EqualTo(key_column, key_value)).to_arrow()
        assert rows.num_rows >= 1, f"no row with {key_column} = {key_value}"
        i = rows.schema.get_field_index(column)
        field = rows.schema.field(i)
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            changed = pc.binary_join_element_wise(rows.column(i), pa.scalar("corrected", type=field.type), "-")
        elif pa.types.is_decimal(field.type):
            changed = pc.add(rows.column(i), pa.scalar(decimal.Decimal(1), type=field.type))
        else:
            changed = pc.add(rows.column(i), pa.scalar(1, type=field.type))
        rows = rows.set_column(i, field, changed.cast(field.type))
        table.overwrite(rows, overwrite_filter=EqualTo(key_column, key_value))
        out["rows"] = rows.num_rows
    elif action == "rewrite":
        rows = table.scan().to_arrow()
        table.overwrite(rows)
        out["rows"] = rows.num_rows
    else:
        raise SystemExit(f"unknown action {action}")
    out["snapshot"] = catalog.load_table(table_name).current_snapshot().snapshot_id
    print(json.dumps(out))


if __name__ == "__main__":
    main()
