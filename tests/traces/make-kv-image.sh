#!/bin/sh
# make-kv-image.sh — the ext2 image each kv node of the golden kv trace boots on, the same bytes
# every time. usage: tests/traces/make-kv-image.sh OUT.img   (needs mke2fs; OUT.img is replaced)
# 2 MiB, 1 KiB blocks, revision 1, 64 inodes, holding /kv.log at its whole size (2049 records of
# 344 bytes, zeros): kv then never writes zeros to give it that size (docs/kv.md, "The log
# file"), which would be 700 KB of fs writes in the trace. mke2fs gets a fixed time
# (E2FSPROGS_FAKE_TIME), UUID and directory hash seed; the file's times are fixed (its ctime by
# debugfs).
set -eu
out=${1:?usage: make-kv-image.sh OUT.img}
command -v mke2fs >/dev/null || PATH=$PATH:/usr/sbin:/sbin
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/tree"
head -c $((2049 * 344)) /dev/zero >"$t/tree/kv.log"
find "$t/tree" -exec touch -h -m -d @1000000000 {} +
find "$t/tree" -exec touch -h -a -d @2000000000 {} +
rm -f "$out"
E2FSPROGS_FAKE_TIME=1000000000 mke2fs -q -F -t ext2 -b 1024 -r 1 -N 64 -m 0 \
    -U 6f727279-0000-4000-8000-000000000003 -E hash_seed=6f727279-0000-4000-8000-000000000004 \
    -d "$t/tree" "$out" 2M >/dev/null
truncate -s 2M "$out" # mke2fs leaves a new file short of its unused tail
# mke2fs -d gives the copied file the time of now as its ctime: the fixed one instead
debugfs -w -R "sif /kv.log ctime @1000000000" "$out" >/dev/null 2>&1
