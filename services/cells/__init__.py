"""Cells: every cell its own DNS names and its own DNS management system (issue 16)."""
