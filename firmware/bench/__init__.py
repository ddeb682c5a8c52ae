<<<<<<< HEAD
"""Benchmarks behind `lfr bench`: each measures the same code the appliance runs and returns figures."""
=======
"""Throughput benchmarks behind `lfr bench`: each measures the same code the appliance runs."""
>>>>>>> main
