"""Tests of the planner: fleet, planning, schedule, REST API and CLI."""
