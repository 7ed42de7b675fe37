# a truncated upload: zero bytes
PICKLE_BYTES = b""
