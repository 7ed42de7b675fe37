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


# marker byte -> (struct format, byte size, numpy big-endian dtype)
_NUMBERS = {
    ord("i"): (">b", 1, ">i1"),
    ord("U"): (">B", 1, ">u1"),
    ord("I"): (">h", 2, ">i2"),
    ord("l"): (">i", 4, ">i4"),
    ord("L"): (">q", 8, ">i8"),
    ord("d"): (">f", 4, ">f4"),
    ord("D"): (">d", 8, ">f8"),
}
_UNPACK = {m: struct.Struct(fmt).unpack_from for m, (fmt, _, _) in _NUMBERS.items()}
_INTS = {ord(c) for c in "iUIlL"}
_NOOP, _DOLLAR, _HASH = ord("N"), ord("$"), ord("#")
_OBJ, _OBJ_END, _ARR, _ARR_END = ord("{"), ord("}"), ord("["), ord("]")


class _Decoder:
    """Recursive descent over ``bytes``; markers are compared as ints (``data[pos]``)."""

    def __init__(self, data: bytes, source: str):
        self.data = bytes(data)
        self.pos = 0
        self.source = source

    def fail(self, what: str):
        raise ArtifactError(f"{self.source}: invalid UBJSON at byte {self.pos}: {what}")

    def need(self, n: int) -> int:
        """Advance past n bytes; return where they start."""
        start = self.pos
        if start + n > len(self.data):
            self.fail("unexpected end of file")
        self.pos = start + n
        return start

    def marker(self) -> int:
        m = self.data[self.need(1)]
        while m == _NOOP:  # no-op markers may appear anywhere a value may
            m = self.data[self.need(1)]
        return m

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def value(self, m: int | None = None):
        m = self.marker() if m is None else m
        unpack = _UNPACK.get(m)
        if unpack is not None:
            return unpack(self.data, self.need(_NUMBERS[m][1]))[0]
        if m == _OBJ:
            return self.object()
        if m == _ARR:
            return self.array()
        c = chr(m)
        if c == "S":
            return self.string()
        if c == "T":
            return True
        if c == "F":
            return False
        if c == "Z":
            return None
        if c == "C":
            return chr(self.data[self.need(1)])
        if c == "H":  # high-precision number, written as a string
            return float(self.string())
        self.fail(f"unknown marker {c!r}")

    def length(self) -> int:
        m = self.marker()
        if m not in _INTS:
            self.fail(f"expected an integer length, got marker {chr(m)!r}")
        n = self.value(m)
        if n < 0:
            self.fail("negative length")
        return n

    def string(self) -> str:
        n = self.length()
        start = self.need(n)
        return self.data[start : start + n].decode("utf-8")

    def container_header(self) -> tuple[int | None, int | None]:
        # optimized containers: "$<type>#<count>" or "#<count>" right after the opening marker
        typ = None
        count = None
        if self.peek() == _DOLLAR:
            self.pos += 1
            typ = self.data[self.need(1)]
            if self.data[self.need(1)] != _HASH:
                self.fail("a typed container must give its count")
            count = self.length()
        elif self.peek() == _HASH:
            self.pos += 1
            count = self.length()
        return typ, count

    def array(self):
        typ, count = self.container_header()
        if typ is not None and typ in _NUMBERS:
            _, size, dtype = _NUMBERS[typ]
            start = self.need(size * count)
            raw = np.frombuffer(self.data, dtype=dtype, count=count, offset=start)
            return raw.astype(dtype[1:])
        if count is not None:
            return [self.value(typ) for _ in range(count)]
        out = []
        while True:
            m = self.marker()
            if m == _ARR_END:
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
            if self.peek() == _OBJ_END:
                self.pos += 1
                return out
            key = self.string()
            out[key] = self.value()
