"""setuptools entry point: everything is in setup.cfg except the package list, which setup.cfg cannot express.

`models/` stays at the top of the repository (build_models.py, the docs and the tests name it there) and ships in
the wheel as the data-only package `lfr_models`, found at run time with importlib (firmware/config.py).
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["firmware", "firmware.*"]), "lfr_models"],
      package_dir={"lfr_models": "models"})
