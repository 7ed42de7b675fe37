"""A corpus of deliberately broken predict functions (one file each) and the helpers to run them.

Each corpus file defines ``MODEL`` (pickled by value with the runtime's cloudpickle, inside the
runtime's Python, like a user's notebook would) or ``PICKLE_BYTES`` (written as is).
"""
