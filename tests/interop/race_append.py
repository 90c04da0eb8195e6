"""Appends to an ingot table with PyIceberg while ingot commits to it, until one append has
lost a race and succeeded on retry (PyIceberg retries as the table's commit.retry.*
properties allow). Prints JSON: appends made, retries seen, failures."""
import json
import logging
import sys
import time

import pyarrow as pa

from lake_catalog import open_catalog
from pyiceberg.exceptions import CommitFailedException


class RetryCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.retries += 1


def main() -> None:
    uri, warehouse, table_name = sys.argv[1:4]
    once = sys.argv[4:5] == ["once"]
    counter = RetryCounter()
    logging.getLogger("pyiceberg").addHandler(counter)
    logging.getLogger("pyiceberg").setLevel(logging.WARNING)
    catalog = open_catalog(uri, warehouse)
    sample = catalog.load_table(table_name).scan(limit=1).to_arrow()
    # Marked as not from Kafka (offset -1), so the test can tell these rows from ingot's.
    index = sample.schema.get_field_index("_kafka_offset")
    field = sample.schema.field(index)
    sample = sample.set_column(index, field, pa.array([-1] * sample.num_rows, type=field.type))
    appends, failures = 0, []
    if once:
        catalog.load_table(table_name).append(sample)
        print(json.dumps({"appends": 1}))
        return
    for _ in range(15):
        table = catalog.load_table(table_name)
        # ingot commits about once a second meanwhile: this append starts from a stale snapshot.
        time.sleep(1.2)
        try:
            table.append(sample)
            appends += 1
        except CommitFailedException as e:
            failures.append(str(e))
        if counter.retries > 0 and appends >= 3:
            break
    print(json.dumps({"appends": appends, "retries": counter.retries, "failures": failures}))


if __name__ == "__main__":
    main()
