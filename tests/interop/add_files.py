"""Registers a Parquet file written outside Iceberg (no field ids) with PyIceberg's `add_files`,
as a team migrating old data into an ingot table would. The rows are copies of the table's
first rows, marked as foreign (negative Kafka offsets, fresh keys).

usage: add_files.py <catalog uri> <warehouse> <table> <rows> [<column to leave out>]
Prints JSON: the file's path, how many rows it holds, and how many line items they have.
"""
import json
import os
import sys
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
from lake_catalog import open_catalog


def without_ids(t: pa.DataType) -> pa.DataType:
    """The same type with no field metadata anywhere (so no Parquet field ids are written)."""
    if pa.types.is_struct(t):
        return pa.struct([bare(f) for f in t])
    if pa.types.is_large_list(t):
        return pa.large_list(bare(t.value_field))
    if pa.types.is_list(t):
        return pa.list_(bare(t.value_field))
    if pa.types.is_map(t):
        return pa.map_(bare(t.key_field), bare(t.item_field))
    return t


def bare(f: pa.Field) -> pa.Field:
    """`f` with its name and nullability and no metadata."""
    return pa.field(f.name, without_ids(f.type), f.nullable)


def main() -> None:
    uri, warehouse, table_name, count = sys.argv[1:5]
    left_out = sys.argv[5:6]
    catalog = open_catalog(uri, warehouse)
    table = catalog.load_table(table_name)
    rows = table.scan(limit=int(count)).to_arrow()
    n = rows.num_rows
    for name, values in [
        ("_kafka_offset", [-1000 - i for i in range(n)]),
        ("idempotency_key", [f"migrated-{i}" for i in range(n)]),
    ]:
        i = rows.schema.get_field_index(name)
        rows = rows.set_column(i, rows.schema.field(i), pa.array(values, type=rows.schema.field(i).type))
    items = sum(len(v) for v in rows.column("items").to_pylist() if v is not None)
    schema = pa.schema([bare(f) for f in rows.schema])
    rows = rows.cast(schema).drop_columns(left_out)
    path = os.path.join(warehouse, f"migrated-{uuid.uuid4()}.parquet")
    pq.write_table(rows, path)
    assert pq.read_schema(path).field(0).metadata is None, "the file must carry no field ids"
    table.add_files([f"file://{path}"])
    print(json.dumps({"path": path, "rows": n, "items": items}))


if __name__ == "__main__":
    main()
