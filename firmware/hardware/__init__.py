"""Hardware boundaries (camera, accelerator, GPIO, clock, watchdog, host health): a Protocol, a real adapter,
a stand-in."""
