"""Reads an ingot table with PyIceberg, an independent Iceberg implementation, and prints
what it saw as JSON: row count, column names, (partition, offset) keys and, when present,
the sorted values of one column."""
import json
import sys

from pyiceberg.catalog.sql import SqlCatalog


def main() -> None:
    uri, warehouse, table_name, value_column = sys.argv[1:5]
    # ingot's URIs are sqlx-style; SQLAlchemy wants a driver in Postgres URIs.
    if uri.startswith("sqlite://"):
        uri = "sqlite:///" + uri[len("sqlite://"):]  # the path is absolute: four slashes
    elif uri.startswith("postgres://"):
        uri = "postgresql+psycopg2://" + uri[len("postgres://"):]
    catalog = SqlCatalog("ingot", uri=uri, warehouse=f"file://{warehouse}")
    table = catalog.load_table(table_name)
    data = table.scan().to_arrow()
    keys = sorted(zip(data["_kafka_partition"].to_pylist(), data["_kafka_offset"].to_pylist()))
    values = sorted(v for v in data[value_column].to_pylist() if v is not None)
    print(json.dumps({
        "rows": data.num_rows,
        "columns": data.schema.names,
        "keys": keys,
        "values": values,
        "snapshot_id": table.current_snapshot().snapshot_id,
    }))


if __name__ == "__main__":
    main()
