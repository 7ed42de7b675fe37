"""A small UBJSON (Universal Binary JSON, draft 12) decoder, enough for XGBoost ``.ubj`` files.

XGBoost writes its ``save_model`` document as big-endian UBJSON with optimized containers:
``[$d#L<n>`` typed arrays of float32 and ``[$l#L<n>`` of int32 for the per-node arrays, and
``[#L<n>`` counted arrays of mixed values (``src/common/json.cc`` ``UBJWriter``). Decoding here
means the xgboost package is not needed at build time. Typed numeric arrays come back as numpy
arrays in native byte order (exact values, no float64 round trip); everything else as plain
Python objects, matching what ``json.loads`` gives for the JSON form.
"""

from __future__ import annotations

import struct

import numpy as np

from builder.errors import ArtifactError


def loads(data: bytes, source: str = "<ubjson>"):
    """Decode one UBJSON value from ``data``; ``source`` names the file in error messages."""
    decoder = _Decoder(data, source)
    value = decoder.value()
    if decoder.pos != len(data):
        raise ArtifactError(f"{source}: trailing bytes after the UBJSON document at {decoder.pos}")
    return value


# marker -> (struct format, byte size, numpy big-endian dtype)
_NUMBERS = {
    b"i": (">b", 1, ">i1"),
    b"U": (">B", 1, ">u1"),
    b"I": (">h", 2, ">i2"),
    b"l": (">i", 4, ">i4"),
    b"L": (">q", 8, ">i8"),
    b"d": (">f", 4, ">f4"),
    b"D": (">d", 8, ">f8"),
}


class _Decoder:
    def __init__(self, data: bytes, source: str):
        self.data = memoryview(data)
        self.pos = 0
        self.source = source

    def fail(self, what: str):
        raise ArtifactError(f"{self.source}: invalid UBJSON at byte {self.pos}: {what}")

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            self.fail("unexpected end of file")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def marker(self) -> bytes:
        m = bytes(self.take(1))
        while m == b"N":  # no-op markers may appear anywhere a value may
            m = bytes(self.take(1))
        return m

    def value(self, m: bytes | None = None):
        m = self.marker() if m is None else m
        if m in _NUMBERS:
            fmt, size, _ = _NUMBERS[m]
            return struct.unpack(fmt, self.take(size))[0]
        if m == b"S":
            return self.string()
        if m == b"{":
            return self.object()
        if m == b"[":
            return self.array()
        if m == b"T":
            return True
        if m == b"F":
            return False
        if m == b"Z":
            return None
        if m == b"C":
            return bytes(self.take(1)).decode("ascii")
        if m == b"H":  # high-precision number, written as a string
            return float(self.string())
        self.fail(f"unknown marker {m!r}")

    def length(self) -> int:
        m = self.marker()
        if m not in (b"i", b"U", b"I", b"l", b"L"):
            self.fail(f"expected an integer length, got marker {m!r}")
        n = self.value(m)
        if n < 0:
            self.fail("negative length")
        return n

    def string(self) -> str:
        n = self.length()
        return bytes(self.take(n)).decode("utf-8")

    def container_header(self) -> tuple[bytes | None, int | None]:
        typ = None
        count = None
        # optimized containers: "$<type>#<count>" or "#<count>" right after the opening marker
        if bytes(self.data[self.pos : self.pos + 1]) == b"$":
            self.pos += 1
            typ = bytes(self.take(1))
            if bytes(self.take(1)) != b"#":
                self.fail("a typed container must give its count")
            count = self.length()
        elif bytes(self.data[self.pos : self.pos + 1]) == b"#":
            self.pos += 1
            count = self.length()
        return typ, count

    def array(self):
        typ, count = self.container_header()
        if typ is not None and typ in _NUMBERS:
            _, size, dtype = _NUMBERS[typ]
            raw = self.take(size * count)
            return np.frombuffer(raw, dtype=dtype).astype(dtype[1:])
        if count is not None:
            return [self.value(typ) for _ in range(count)]
        out = []
        while True:
            m = self.marker()
            if m == b"]":
                return out
            out.append(self.value(m))

    def object(self):
        typ, count = self.container_header()
        out = {}
        if count is not None:
            for _ in range(count):
                key = self.string()
                out[key] = self.value(typ)
            return out
        while True:
            if bytes(self.data[self.pos : self.pos + 1]) == b"}":
                self.pos += 1
                return out
            key = self.string()
            out[key] = self.value()
