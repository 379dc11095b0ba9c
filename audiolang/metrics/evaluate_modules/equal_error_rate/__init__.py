"""Package marker so that setuptools ships this metric script; load it with ``load_metric``."""
