"""The plan's JSON Schema file (schema.json beside this module), generated from the pydantic models.

`python -m services.plan.schema` rewrites the file; tests/plan/test_schema_file.py fails when the
file and the models drift apart. Readers in other languages validate plans against the file.
"""

from __future__ import annotations

import json
from pathlib import Path

from services.plan.model import json_schema

SCHEMA_PATH = Path(__file__).with_name("schema.json")


def render() -> str:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "dnsctl/plan.schema.json",
        **json_schema(),
    }
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_PATH.write_text(render())
    print(f"wrote {SCHEMA_PATH}")


if __name__ == "__main__":
    main()
