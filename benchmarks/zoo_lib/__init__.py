"""Helpers for benchmarks/generate_zoo.py (model-tree zoo generator)."""
