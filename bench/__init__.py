"""Benchmarks: each prints numbers and asserts nothing (README, "Benchmarks")."""
