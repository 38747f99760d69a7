#!/bin/sh
# make-fs-image.sh — the ext2 image the golden fs trace is recorded on, the same bytes every time.
# usage: tests/traces/make-fs-image.sh OUT.img   (needs mke2fs; OUT.img is replaced)
# 1 MiB, 1 KiB blocks, revision 1, 64 inodes: /hello.txt, /dir/sub/deep.txt. mke2fs is given a
# fixed time (E2FSPROGS_FAKE_TIME), UUID and directory hash seed; the tree's mtimes are fixed
# and its atimes later than them, so copying it in (relatime) leaves them as they are.
set -eu
out=${1:?usage: make-fs-image.sh OUT.img}
command -v mke2fs >/dev/null || PATH=$PATH:/usr/sbin:/sbin
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/tree/dir/sub"
printf 'hello from ext2\n' >"$t/tree/hello.txt"
printf 'three levels down\n' >"$t/tree/dir/sub/deep.txt"
find "$t/tree" -exec touch -h -m -d @1000000000 {} +
find "$t/tree" -exec touch -h -a -d @2000000000 {} +
rm -f "$out"
E2FSPROGS_FAKE_TIME=1000000000 mke2fs -q -F -t ext2 -b 1024 -r 1 -N 64 -m 0 \
    -U 6f727279-0000-4000-8000-000000000001 -E hash_seed=6f727279-0000-4000-8000-000000000002 \
    -d "$t/tree" "$out" 1M >/dev/null
truncate -s 1M "$out" # mke2fs leaves a new file short of its unused tail
