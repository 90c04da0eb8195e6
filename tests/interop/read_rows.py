"""Reads an ingot lake table with an independent engine — PyIceberg or DuckDB — and prints
its rows as JSON, so tests can compare them with what ingot reads.

usage: read_rows.py <pyiceberg|duckdb> <catalog uri> <warehouse dir or s3:// URI> <table> <columns,...>
                    [--snapshot ID | --as-of-ms MILLIS]

Timestamps are printed as microseconds since the epoch. With --as-of-ms, PyIceberg resolves
the snapshot itself (`snapshot_as_of_timestamp`); the answer says which one it picked, or
null when there is none.
"""
import argparse
import json
import pathlib

from lake_catalog import open_catalog, s3_properties


def open_table(uri: str, warehouse: str, name: str):
    return open_catalog(uri, warehouse).load_table(name)


def as_plain(value):
    if hasattr(value, "timestamp"):  # datetime → µs since the epoch
        return round(value.timestamp() * 1_000_000)
    return value


def read_pyiceberg(table, columns, snapshot_id):
    data = table.scan(snapshot_id=snapshot_id, selected_fields=tuple(columns)).to_arrow()
    return [[as_plain(v) for v in row] for row in zip(*(data[c].to_pylist() for c in columns))]


def read_duckdb(table, columns, snapshot_id):
    import duckdb
    import duckdb_extension_avro
    import duckdb_extension_iceberg
    import duckdb_extension_parquet

    con = duckdb.connect()
    extensions = [(duckdb_extension_parquet, "parquet"), (duckdb_extension_avro, "avro"),
                  (duckdb_extension_iceberg, "iceberg")]
    s3 = s3_properties()
    if s3:
        import duckdb_extension_httpfs
        extensions.append((duckdb_extension_httpfs, "httpfs"))
    for module, name in extensions:
        path = pathlib.Path(module.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
        con.execute(f"LOAD '{path}'")
    if s3:
        endpoint = s3["s3.endpoint"].split("://", 1)
        q = lambda v: "'" + v.replace("'", "''") + "'"  # noqa: E731 (DuckDB takes no parameters here)
        con.execute(
            f"CREATE SECRET (TYPE s3, KEY_ID {q(s3['s3.access-key-id'])}, SECRET {q(s3['s3.secret-access-key'])}, "
            f"REGION {q(s3['s3.region'])}, ENDPOINT {q(endpoint[1])}, URL_STYLE 'path', "
            f"USE_SSL {str(endpoint[0] == 'https').lower()})"
        )
    metadata = table.metadata_location.removeprefix("file://")
    select = ", ".join(f'"{c}"' for c in columns)
    args = f"'{metadata}'" + (f", snapshot_from_id => {snapshot_id}" if snapshot_id is not None else "")
    rows = con.execute(f"SELECT {select} FROM iceberg_scan({args})").fetchall()
    return [[as_plain(v) for v in row] for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("engine", choices=["pyiceberg", "duckdb"])
    parser.add_argument("uri")
    parser.add_argument("warehouse")
    parser.add_argument("table")
    parser.add_argument("columns")
    parser.add_argument("--snapshot", type=int)
    parser.add_argument("--as-of-ms", type=int)
    args = parser.parse_args()
    table = open_table(args.uri, args.warehouse, args.table)
    columns = args.columns.split(",")
    snapshot_id = args.snapshot
    if args.as_of_ms is not None:
        snapshot = table.snapshot_as_of_timestamp(args.as_of_ms, inclusive=True)
        if snapshot is None:
            print(json.dumps({"snapshot_id": None, "rows": None}))
            return
        snapshot_id = snapshot.snapshot_id
    if snapshot_id is None and table.current_snapshot() is not None:
        snapshot_id = table.current_snapshot().snapshot_id
    read = read_pyiceberg if args.engine == "pyiceberg" else read_duckdb
    rows = sorted(read(table, columns, snapshot_id), key=lambda r: [str(v) for v in r])
    print(json.dumps({"snapshot_id": snapshot_id, "rows": rows}))


if __name__ == "__main__":
    main()
