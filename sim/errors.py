"""Errors that mean "the user's input is wrong" (exit status 2), as opposed to internal bugs (1)."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or configuration: a malformed trace, an unknown model, a config that cannot fit.

    The message must name the file, row or config key at fault; the CLI prints it on one line and
    exits with status 2, without a traceback.
    """


class PlanError(RuntimeError):
    """A policy returned a plan the simulator cannot apply (a policy bug, exit status 1)."""
