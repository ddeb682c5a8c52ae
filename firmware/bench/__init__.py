"""Benchmarks behind `lfr bench`: per-stage latency, 1:N search, peak memory, test scenes."""
