"""THE ONLY CODE THAT SHIPS INSIDE THE PICKLE.

Modules here import only numpy, pandas and the standard library, never another ``builder``
module (not even each other through ``builder.kernels...`` absolute imports at module level in
a way that would pickle by reference). ``builder.pack`` registers this package for
pickling by value, so the container needs no ``builder``.
"""
