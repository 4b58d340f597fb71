"""A shim for tools that look for setup.py: all metadata, dependencies included, is in pyproject.toml."""

from setuptools import setup

setup()
