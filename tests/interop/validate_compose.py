"""Checks a Compose file (argv[1]) against the Compose specification's JSON schema (argv[2],
shipped in the npm package `dclint`) and the reference stack's own rules: every image pinned
by a tag other than `latest` (or built here), every file mounted from the repository present.
Prints each problem on its own line and exits 1 if there is any."""
import json
import os
import sys

import yaml
from jsonschema import Draft7Validator

compose_file, schema_file = sys.argv[1], sys.argv[2]
with open(compose_file) as f:
    compose = yaml.safe_load(f)
with open(schema_file) as f:
    schema = json.load(f)

problems = [
    f"{'/'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
    for error in Draft7Validator(schema).iter_errors(compose)
]
base = os.path.dirname(os.path.abspath(compose_file))
services = compose.get("services") if isinstance(compose, dict) else None
for name, service in (services or {}).items():
    if not isinstance(service, dict):
        continue
    image = service.get("image")
    if image and "build" not in service:
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else None
        if not tag or tag == "latest":
            problems.append(f"services/{name}/image: `{image}` is not pinned to a tag")
    for volume in service.get("volumes", []):
        source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
        if source.startswith("./") and not os.path.exists(os.path.join(base, source)):
            problems.append(f"services/{name}/volumes: {source} does not exist")

for problem in problems:
    print(problem)
sys.exit(1 if problems else 0)
