"""Benchmarks for Mishards nodes (run from the repository root, e.g. ``python -m benchmarks.node_bench``)."""
