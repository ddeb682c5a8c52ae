"""Hardware boundaries (camera, accelerator, GPIO, clock): a Protocol, a real adapter, a stand-in."""
