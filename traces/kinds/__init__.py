"""One module per workload kind; :mod:`traces.builders` dispatches on ``cfg["kind"]``."""
