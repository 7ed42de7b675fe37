"""THE ONLY CODE THAT SHIPS INSIDE THE PICKLE.

Modules here import only numpy, pandas, the standard library and each other (relative or
``builder.kernels...`` imports both work: ``builder.pack`` registers this whole package for
pickling by value, so the container needs no ``builder``). They never import another
``builder`` module, not even inside a function body. tests/test_kernels_imports.py checks every
import statement of every module here, and the build scans each pickle's imports.
"""
