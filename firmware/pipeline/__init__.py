"""The live loop: per-camera pipeline, typed messages to the hub, the hub that owns the database."""
