#!/usr/bin/env python3
"""mkdisk_big.py — write the default site's large file (www/big.bin of the default disk): SIZE
bytes of 16-byte lines, each its own offset in hex, so any range read at a wrong offset shows."""
import sys

path, size = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    f.write(b"".join(b"%015x\n" % (i * 16) for i in range(size // 16)))
