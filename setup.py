"""The package list, which pyproject.toml cannot say alone: the packages found under core/ and
connectors/, and connector_recipes, which is the top-level recipes/ folder (package-dir in
pyproject.toml), so that an installed connector has its templates (`connector init`)."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["core*", "connectors*"]), "connector_recipes"])
