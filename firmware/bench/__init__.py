"""Benchmarks and acceptance runs: the pipeline on replay scenes and videos, with figures for the notes."""
