"""setuptools entry point: everything is in setup.cfg except the package list, which setup.cfg cannot express.

`models/` stays at the top of the repository (build_models.py, the docs and the tests name it there) and ships in
the wheel as the data-only package `lfr_models`, found at run time with importlib (firmware/config.py).
"""

from setuptools import find_packages, setup

# The viewer's static folders hold no Python; they are named as (data-only) packages so setuptools installs
# their files without its "absent from the packages configuration" warning for each one.
STATIC = ["firmware.viewer.static", "firmware.viewer.handheld.static"]

setup(packages=[*find_packages(include=["firmware", "firmware.*"]), *STATIC, "lfr_models"],
      package_dir={"lfr_models": "models"})
