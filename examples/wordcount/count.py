"""Counts words: one word per input line (hash-partitioned by word, so each
word arrives at exactly one counter), `word<TAB>count` per output line,
sorted by word so the output is the same on every run."""

import collections
import sys

counts = collections.Counter(sys.stdin.buffer)
out = sys.stdout.buffer
for word, n in sorted(counts.items()):
    word = word.rstrip(b"\n")
    if word:
        out.write(b"%s\t%d\n" % (word, n))
