"""Throughput benchmarks behind `lfr bench`: each measures the same code the appliance runs."""
