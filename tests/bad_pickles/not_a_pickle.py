PICKLE_BYTES = b"not a pickle at all"
