"""Officers' handheld devices: pairing, confirmed alerts sent to chosen handhelds, their answers."""
