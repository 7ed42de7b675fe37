"""nmr: declarative build-and-deploy for Numerai model uploads."""

__version__ = "0.1.0"
