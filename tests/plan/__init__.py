"""Tests of the plan format and the plan store."""
