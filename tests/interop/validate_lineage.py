"""Validates OpenLineage events (JSON lines on stdin) offline against the vendored spec in
tests/spec/openlineage: the envelope against OpenLineage.json, every facet against its own
schema (JSON Schema 2020-12, format checking on), plus Marquez's extra rules from NAMING.md.
Prints {"events": N, "errors": [...]}.
"""
import json
import pathlib
import re
import sys
import uuid

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

SPEC = pathlib.Path(__file__).resolve().parents[1] / "spec" / "openlineage"
MARQUEZ_NAMESPACE = re.compile(r"^[a-zA-Z:;=/0-9_\-\.@+]{1,1024}$")


OWN = pathlib.Path(__file__).resolve().parents[2] / "lineage" / "schemas"


def load_schemas():
    """The spec's schemas and ingot's own custom facet schemas, by $id and by facet key."""
    resources, by_key = [], {}
    for path in sorted(SPEC.rglob("*.json")) + sorted(OWN.glob("*.json")):
        parts = path.relative_to(SPEC).parts if path.is_relative_to(SPEC) else ("own",)
        if parts[0] in ("tests", "examples") or path.name == "registry.json":
            continue
        schema = json.loads(path.read_text())
        if "$id" not in schema:
            continue
        resources.append((schema["$id"], Resource.from_contents(schema)))
        for key in schema.get("properties", {}):
            by_key.setdefault(key, []).append(schema)
    return Registry().with_resources(resources), by_key


# Where a facet key sits decides which file applies when several define it.
PLACE = {
    "run": ("RunFacet",), "job": ("JobFacet",), "dataset": ("DatasetFacet",),
    "input": ("InputDatasetFacet", "DatasetFacet"), "output": ("OutputDatasetFacet", "DatasetFacet"),
}


def main() -> None:
    registry, by_key = load_schemas()
    core = json.loads((SPEC / "OpenLineage.json").read_text())
    checker = FormatChecker()
    # The RunEvent definition directly: the root's oneOf would hide which rule failed.
    run_event = {"$ref": core["$id"] + "#/$defs/RunEvent"}
    envelope = Draft202012Validator(run_event, registry=registry, format_checker=checker)
    errors = []
    events = [json.loads(line) for line in sys.stdin if line.strip()]

    def check_facets(where, place, facets, index):
        for key, value in (facets or {}).items():
            candidates = by_key.get(key, [])
            if place in ("input", "output", "dataset"):
                candidates = [s for s in candidates if any(p in s["$id"] for p in PLACE[place])] or candidates
            else:
                candidates = [s for s in candidates if any(p in s["$id"] for p in PLACE[place])]
            if not candidates:
                # A custom facet: only the base facet rules apply, and it must name its schema.
                if "_producer" not in value or "_schemaURL" not in value:
                    errors.append(f"event {index}: custom facet {where}.{key} lacks _producer/_schemaURL")
                continue
            problems = []
            for schema in candidates:
                validator = Draft202012Validator(schema, registry=registry, format_checker=checker)
                found = [e.message for e in validator.iter_errors({key: value})]
                if not found:
                    problems = []
                    break
                problems.extend(found)
            for p in problems[:3]:
                errors.append(f"event {index}: {where}.{key}: {p[:300]}")

    for i, event in enumerate(events):
        for e in envelope.iter_errors(event):
            errors.append(f"event {i}: envelope: {e.message[:300]} at {list(e.absolute_path)}")
        check_facets("run.facets", "run", event.get("run", {}).get("facets"), i)
        check_facets("job.facets", "job", event.get("job", {}).get("facets"), i)
        job_type = event.get("job", {}).get("facets", {}).get("jobType")
        if job_type is not None and not all(job_type.get(k) for k in ("processingType", "integration", "jobType")):
            errors.append(f"event {i}: Marquez needs jobType.processingType, integration and jobType")
        try:
            uuid.UUID(event["run"]["runId"])
        except Exception:
            errors.append(f"event {i}: runId is not a UUID")
        if "T" not in event.get("eventTime", ""):
            errors.append(f"event {i}: eventTime has no time part")
        for side in ("inputs", "outputs"):
            for dataset in event.get(side, []):
                name = f"{side}[{dataset.get('namespace')}:{dataset.get('name')}]"
                if not MARQUEZ_NAMESPACE.match(dataset.get("namespace", "")):
                    errors.append(f"event {i}: {name}: namespace Marquez refuses")
                for link in dataset.get("facets", {}).get("symlinks", {}).get("identifiers", []):
                    if not MARQUEZ_NAMESPACE.match(link.get("namespace", "")):
                        errors.append(f"event {i}: {name}: symlink namespace Marquez refuses")
                if re.match(r"\d", dataset.get("name", "")) and re.search(r":\d", dataset.get("namespace", "")):
                    errors.append(f"event {i}: {name}: a name starting with a digit breaks Marquez node ids")
                check_facets(f"{name}.facets", "dataset", dataset.get("facets"), i)
                check_facets(f"{name}.inputFacets", "input", dataset.get("inputFacets"), i)
                check_facets(f"{name}.outputFacets", "output", dataset.get("outputFacets"), i)
    print(json.dumps({"events": len(events), "errors": errors}))


if __name__ == "__main__":
    main()
