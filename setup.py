"""Packaging beyond pyproject.toml: one import name.

The design card's top-level folders (sim/, policies/, traces/, calibrate/, experiments/, figures/) stay
where they are and install as subpackages of ``warmsim`` (``warmsim.sim``, ``warmsim.policies``, ...);
``warmsim/`` holds only the top package. Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

TOP = ("sim", "policies", "traces", "calibrate", "experiments", "figures")

setup(
    package_dir={"warmsim": "warmsim", **{f"warmsim.{t}": t for t in TOP}},
    packages=["warmsim"] + [f"warmsim.{t}{'.' + sub if sub else ''}" for t in TOP for sub in ("", *find_packages(t))],
)
