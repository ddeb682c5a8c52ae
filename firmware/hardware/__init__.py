"""Hardware boundaries (clock, GPIO, camera, accelerator): one Protocol each, a stand-in beside it."""
