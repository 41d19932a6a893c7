"""warmsim: a trace-driven discrete-event simulator of multi-LLM serving on shared GPU clusters.

One import name for the whole project: ``warmsim.sim`` (the cluster model), ``warmsim.policies``,
``warmsim.traces``, ``warmsim.calibrate``, ``warmsim.experiments`` and ``warmsim.figures``. The Python API
is reachable from here::

    import warmsim
    res = warmsim.compare(warmsim.config("workload.rps=10", "systems=[static,warmserve]"))

Installed, the subpackages sit inside this folder. In a source checkout they are the design card's
top-level folders next to it (``setup.py`` maps them at install time), so there the checkout's root
joins this package's search path; that keeps ``python -m pytest`` from the checkout on the checkout's
code whichever way warmsim was installed.
"""

from __future__ import annotations

from pathlib import Path as _Path

_here = _Path(__file__).resolve().parent
if not (_here / "sim").is_dir() and (_here.parent / "sim" / "__init__.py").is_file():
    __path__.append(str(_here.parent))  # a source checkout: warmsim.sim is ../sim

#: The Python API's names, imported on first use (``import warmsim`` stays light).
_API = ("Run", "config", "compare", "run", "simulate", "load", "claim_dir", "sensitivity")

__all__ = list(_API)


def __getattr__(name: str):
    if name in _API:
        from warmsim.experiments import api

        return getattr(api, name)
    raise AttributeError(f"module 'warmsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
