"""Inference back-ends: the CPU (XNNPACK) and the Coral Edge TPU, in an explicit registry."""
