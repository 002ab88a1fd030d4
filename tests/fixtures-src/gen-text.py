#!/usr/bin/python3
"""Deterministic, compressible text for fixture layers.

Usage: gen-text.py SEED DIR NAME=SIZE [NAME=SIZE ...]

Writes each DIR/NAME with SIZE bytes of log-like English-ish text. The output depends only
on SEED and the arguments (SHAKE-256 is the only source of randomness), so every machine
produces the same bytes and the same layer digests. The text compresses about 3-4x with
gzip: a pool of lines built from a 512-word vocabulary, copied in 64 KiB slices, so gzip
finds short matches and zstd with its larger window finds long ones too.
"""
import hashlib
import os
import sys

SYLLABLES = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"] + ["th", "st", "er", "an", "qu"]
LEVELS = [b"DEBUG", b"INFO", b"INFO", b"INFO", b"WARN", b"ERROR"]
POOL_SIZE = 1 << 20
SLICE = 64 << 10


class Stream:
    """A byte stream from SHAKE-256(seed), consumed a few bytes at a time."""

    def __init__(self, seed: bytes):
        self.buf = hashlib.shake_256(seed).digest(4 << 20)
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            self.buf = hashlib.shake_256(self.buf[-64:]).digest(4 << 20)
            self.pos = 0
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def int(self, below: int) -> int:
        return int.from_bytes(self.take(4), "little") % below


def vocabulary(rnd: Stream) -> list[bytes]:
    words = []
    for _ in range(512):
        n = 1 + rnd.int(3)
        words.append("".join(SYLLABLES[rnd.int(len(SYLLABLES))] for _ in range(n)).encode())
    return words


def pool(rnd: Stream, words: list[bytes]) -> bytes:
    lines = []
    size = 0
    while size < POOL_SIZE + SLICE:
        n = 4 + rnd.int(12)
        body = b" ".join(words[rnd.int(len(words))] for _ in range(n))
        line = b"%s t=%07d req=%08x %s\n" % (LEVELS[rnd.int(len(LEVELS))], rnd.int(10**7), rnd.int(1 << 32), body)
        lines.append(line)
        size += len(line)
    return b"".join(lines)


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    seed, outdir = sys.argv[1].encode(), sys.argv[2]
    rnd = Stream(b"berth-fixture-text:" + seed)
    text = pool(rnd, vocabulary(rnd))
    for spec in sys.argv[3:]:
        name, _, size_s = spec.partition("=")
        size = int(size_s)
        path = os.path.join(outdir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            left = size
            while left > 0:
                off = rnd.int(POOL_SIZE)
                chunk = text[off : off + min(SLICE, left)]
                f.write(chunk)
                left -= len(chunk)


if __name__ == "__main__":
    main()
