"""Metric scripts for ``evaluate.load(<local path>)``; use ``audiolang.metrics.load_metric(name)``.

The ``__init__.py`` files make each folder a package so that setuptools ships the scripts in a wheel.
"""
