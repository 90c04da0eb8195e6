"""Parses a Prometheus text exposition (stdin) with the reference parser (prometheus_client)
and prints its samples as JSON lines: {"name", "labels", "value"}. A document the parser
rejects fails the script."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        print(json.dumps({"name": sample.name, "labels": sample.labels, "value": sample.value}))
