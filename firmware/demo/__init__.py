"""`lfr demo`: the appliance and the viewer on a replay scene made from registry-package faces."""
