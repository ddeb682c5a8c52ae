"""The `lfr` command line: one module per command group, registered explicitly in `main.COMMANDS`."""
