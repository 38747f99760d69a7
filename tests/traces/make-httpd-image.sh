#!/bin/sh
# make-httpd-image.sh — the ext2 image the golden httpd trace is recorded on, the same bytes every
# time. usage: tests/traces/make-httpd-image.sh OUT.img   (needs mke2fs; OUT.img is replaced)
# 1 MiB, 1 KiB blocks, revision 1, 64 inodes: /www/index.html, /www/hello.txt (5000 bytes: two
# fs reads), /www/sub/index.html. Fixed mke2fs time, UUID and hash seed; the tree's mtimes are
# fixed (Last-Modified) and its atimes later, so reading it leaves them as they are.
set -eu
out=${1:?usage: make-httpd-image.sh OUT.img}
command -v mke2fs >/dev/null || PATH=$PATH:/usr/sbin:/sbin
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/tree/www/sub"
printf '<!doctype html>\n<title>orrery</title>\n<p>served by httpd\n' >"$t/tree/www/index.html"
awk 'BEGIN { for (i = 0; i < 500; i++) printf "line %04d\n", i }' >"$t/tree/www/hello.txt"
printf '<p>a sub page\n' >"$t/tree/www/sub/index.html"
find "$t/tree" -exec touch -h -m -d @1000000000 {} +
find "$t/tree" -exec touch -h -a -d @2000000000 {} +
rm -f "$out"
E2FSPROGS_FAKE_TIME=1000000000 mke2fs -q -F -t ext2 -b 1024 -r 1 -N 64 -m 0 \
    -U 6f727279-0000-4000-8000-000000000003 -E hash_seed=6f727279-0000-4000-8000-000000000004 \
    -d "$t/tree" "$out" 1M >/dev/null
truncate -s 1M "$out" # mke2fs leaves a new file short of its unused tail
