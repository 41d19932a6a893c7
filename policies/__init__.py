"""Decisions only: each policy takes a read-only snapshot and returns a plan that ``sim`` verifies
and applies. No policy mutates the cluster, schedules events, reads a clock or does I/O."""
