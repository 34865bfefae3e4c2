"""A stored trace's gzip, spliced into a response without being decompressed.

The store keeps a share's trace as gzip whose deflate data ends at a sync-flush point, followed by an
empty final block (`pack`): still a plain gzip file, and its middle is a piece of deflate stream that
another stream may continue. `around(head, packed, tail)` is then the gzip of `head + trace + tail`
(a share's page, or its JSON) at the cost of compressing `head` and `tail` only: the deflate streams
are joined at byte-aligned block boundaries and the CRC-32s combined (zlib's crc32_combine, which
Python's zlib does not expose). A 27 MB trace stored in 0.3-3 MB goes out as those bytes, so viewing
it costs the server a copy, where decompressing and compressing it again took 0.2-0.8 s of CPU.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

LEVEL = 6  # zlib's default: a share is written once and read many times
# gzip header: deflate, no flags, mtime 0, no extra flags, OS 3 (Unix). Python's gzip.compress writes
# OS 255, which tells rows packed before splicing (whole streams, not joinable) from these.
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
SYNC = b"\x00\x00\xff\xff"  # the empty stored block a sync flush ends with
FINAL = b"\x03\x00"  # an empty final block (fixed Huffman, end of block only)
TRAILER_BYTES = 8  # CRC-32 and length mod 2**32, little-endian
PIECE_BYTES = 1 << 20  # what `pieces` decompresses at a time
_POLY = 0xEDB88320  # CRC-32's polynomial, reflected


def _deflate(data: bytes, mode: int, level: int = LEVEL) -> bytes:
    packer = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush(mode)


def pack(data: bytes) -> bytes:
    """`data` as a gzip file that `around` can splice (and any gzip reader can read)."""
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return HEADER + _deflate(data, zlib.Z_SYNC_FLUSH) + FINAL + trailer


def spliceable(packed: bytes) -> bool:
    """Whether `packed` was written by `pack` (older rows are whole gzip streams)."""
    end = len(packed) - TRAILER_BYTES
    return packed.startswith(HEADER) and packed[end - len(FINAL) - len(SYNC) : end] == SYNC + FINAL


def unpack(packed: bytes) -> bytes:
    return zlib.decompress(packed, 16 + zlib.MAX_WBITS)


def pieces(packed: bytes, size: int = PIECE_BYTES) -> Iterator[bytes]:
    """The data of a gzip file, `size` bytes at a time (for a client that takes no gzip)."""
    unpacker = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending = packed
    while pending and not unpacker.eof:
        piece = unpacker.decompress(pending, size)
        pending = unpacker.unconsumed_tail
        if piece:
            yield piece
    if tail := unpacker.flush():
        yield tail


def _multmodp(a: int, b: int) -> int:
    """a(x) * b(x) modulo CRC-32's polynomial (reflected bit order), as zlib's multmodp."""
    m, product = 1 << 31, 0
    while m:
        if a & m:
            product ^= b
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1
        m >>= 1
    return product


def _x8nmodp(n: int) -> int:
    """x^(8n) modulo the polynomial: the shift that appending n bytes applies to a CRC."""
    power, square = 1 << 31, 1 << 23  # x^0 and x^8: x^k is bit 31 - k
    while n:
        if n & 1:
            power = _multmodp(square, power)
        square = _multmodp(square, square)
        n >>= 1
    return power


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """The CRC-32 of A + B from crc32(A), crc32(B) and len(B)."""
    return _multmodp(_x8nmodp(length2), crc1) ^ crc2


def around(head: bytes, packed: bytes, tail: bytes) -> bytes:
    """The gzip of head + (the data `packed` holds) + tail; `packed` must be `spliceable`."""
    end = len(packed) - TRAILER_BYTES
    crc, length = struct.unpack("<II", packed[end:])
    crc = crc32_combine(zlib.crc32(head), crc, length)
    crc = crc32_combine(crc, zlib.crc32(tail), len(tail))
    total = (len(head) + length + len(tail)) & 0xFFFFFFFF
    middle = memoryview(packed)[len(HEADER) : end - len(FINAL)]  # up to and with the sync flush
    return b"".join(
        (
            HEADER,
            _deflate(head, zlib.Z_SYNC_FLUSH),
            middle,
            _deflate(tail, zlib.Z_FINISH),
            struct.pack("<II", crc, total),
        )
    )
