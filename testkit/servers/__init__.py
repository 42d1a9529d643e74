"""Real external processes for the tests and the benchmarks (TESTING.md)."""
