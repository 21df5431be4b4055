"""Helpers the test suites and the benchmarks share, imported as ``tests.support.<module>``."""
