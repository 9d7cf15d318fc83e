"""Counts words: one word per input line (hash-partitioned by word, so each
word arrives at exactly one counter), `word<TAB>count` per output line,
sorted by word so the output is the same on every run. Reads in 1 MiB
chunks: splitting a chunk is much faster than iterating over lines."""

import collections
import sys

counts = collections.Counter()
inp = sys.stdin.buffer
rest = b""
while True:
    chunk = inp.read(1 << 20)
    if not chunk:
        break
    chunk = rest + chunk
    cut = chunk.rfind(b"\n") + 1
    rest = chunk[cut:]
    counts.update(chunk[:cut].split(b"\n"))
counts.update(rest.split(b"\n"))
out = sys.stdout.buffer
for word, n in sorted(counts.items()):
    if word:
        out.write(b"%s\t%d\n" % (word, n))
