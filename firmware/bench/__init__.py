"""Benchmarks behind `lfr bench`: each module measures one thing on the code the appliance runs."""
