"""Reads an ingot table with PyIceberg, an independent Iceberg implementation, and prints
what it saw as JSON: row count, column names, (partition, offset) keys and, when present,
the sorted values of one column."""
import json
import sys

from lake_catalog import open_catalog


def main() -> None:
    uri, warehouse, table_name, value_column = sys.argv[1:5]
    catalog = open_catalog(uri, warehouse)
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
