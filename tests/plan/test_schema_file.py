"""The JSON Schema file in the repo is exactly what the models generate, and real plans satisfy it."""

from __future__ import annotations

import json

import jsonschema

from planner.fleet import demo_fleet, generate_fleet
from planner.planning import build_plan
from services.plan.schema import SCHEMA_PATH, render


def test_schema_file_matches_the_models():
    assert SCHEMA_PATH.read_text() == render(), (
        "services/plan/schema.json is out of date with services/plan/model.py: run `python -m services.plan.schema`"
    )


def test_plans_validate_against_the_schema_file():
    schema = json.loads(SCHEMA_PATH.read_text())
    for fleet in (demo_fleet(), generate_fleet(150, seed=4)):
        plan = build_plan(fleet, 7, reason="schema check", lane="fast")
        jsonschema.validate(json.loads(plan.to_json()), schema)


def test_schema_rejects_what_the_model_rejects():
    schema = json.loads(SCHEMA_PATH.read_text())
    doc = json.loads(build_plan(demo_fleet(), 1, reason="", lane="slow").to_json())
    doc["endpoints"][0]["targets"][0]["weight"] = 256
    try:
        jsonschema.validate(doc, schema)
    except jsonschema.ValidationError as exc:
        assert "256" in str(exc)
    else:
        raise AssertionError("a weight of 256 passed the schema")
