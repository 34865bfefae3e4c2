"""app/splice.py: a stored trace's gzip spliced between a page's head and tail is the gzip of the
whole, as zlib and Python's gzip read it, without the trace being decompressed."""

from __future__ import annotations

import gzip
import os
import random
import zlib

import pytest

from app import splice


@pytest.mark.parametrize("length", [0, 1, 3, 1_000, 65_536, 1_000_003])
def test_crc32_combine_is_zlibs(length: int) -> None:
    a, b = os.urandom(97), os.urandom(length)
    assert splice.crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def _document(size: int) -> bytes:
    rng = random.Random(size)
    words = [b'"n%d": %d' % (i, rng.randrange(10**6)) for i in range(size // 12)]
    return b"{" + b", ".join(words) + b', "tail": "' + os.urandom(size // 8).hex().encode() + b'"}'


@pytest.mark.parametrize("size", [0, 100, 300_000, 3_000_000])
def test_a_packed_trace_spliced_between_head_and_tail_reads_as_the_whole(size: int) -> None:
    data = _document(size)
    packed = splice.pack(data)
    assert splice.spliceable(packed) and gzip.decompress(packed) == data and splice.unpack(packed) == data
    head, tail = "<!doctype html><title>链式法则</title><script id=trace>".encode() * 50, b"</script></html>"
    whole = splice.around(head, packed, tail)
    assert gzip.decompress(whole) == head + data + tail
    streaming = zlib.decompressobj(16 + zlib.MAX_WBITS)  # as a browser or httpx reads it: it checks the CRC and length
    assert streaming.decompress(whole) + streaming.flush() == head + data + tail and streaming.eof
    assert not streaming.unused_data
    assert b"".join(splice.pieces(packed, 1_000)) == data


def test_rows_packed_before_splicing_are_told_apart() -> None:
    data = _document(10_000)
    assert not splice.spliceable(gzip.compress(data, 6, mtime=0))  # what the store wrote before
    assert not splice.spliceable(b"")
