"""Firmware of the LFR van appliance: capture, detect, track, embed, match, decide, store, link."""

__version__ = "0.1.0"
