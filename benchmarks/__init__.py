"""Throughput benchmarks. Not tests: nothing here asserts a timing."""
