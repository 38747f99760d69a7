#!/bin/sh
# record.sh — re-record the golden traces that ctest replays (see docs/replay.md).
#
#   tests/traces/record.sh [path/to/orrery]      (default: build/orrery)
#
# Each NAME.txt is a console script; NAME.db is the deterministic run of the built-in image
# with that input (seed 1), compacted to 4 KiB pages so the file stays small. tcpip-sim.db is
# node 0 of two simulated nodes (record_tcpip.c, built beside orrery as tests/record_tcpip):
# its tcpip serves a TCP echo both ways, a UDP datagram and a ping. fs-sim.db is the fs server of
# one simulated node (record_fs.c) on the image of make-fs-image.sh. httpd-sim.db is httpd's node
# of two (record_httpd.c) on the image of make-httpd-image.sh. kv-sim.db is the kv leader's and
# follower's nodes of three (record_kv.c) on images of make-kv-image.sh. Re-record after a
# deliberate change of a server's behaviour, and commit the .db files with that change.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
orrery=${1:-build/orrery}
command -v sqlite3 >/dev/null || { echo "record.sh: needs the sqlite3 command (apt install sqlite3)" >&2; exit 2; }
for script in "$here"/*.txt; do
    name=$(basename "$script" .txt)
    db="$here/$name.db"
    rm -f "$db"
    status=0
    "$orrery" run --deterministic --seed 1 --trace "$db" < "$script" > /dev/null || status=$?
    sqlite3 "$db" 'PRAGMA journal_mode=DELETE; PRAGMA page_size=4096; VACUUM;' > /dev/null
    echo "$name.db: exit status $status, $(sqlite3 "$db" 'SELECT count(*) FROM events') events, $(wc -c < "$db") bytes"
done
db="$here/tcpip-sim.db"
rm -f "$db"
"$(dirname "$orrery")/tests/record_tcpip" "$db"
sqlite3 "$db" 'PRAGMA journal_mode=DELETE; PRAGMA page_size=4096; VACUUM;' > /dev/null
echo "tcpip-sim.db: $(sqlite3 "$db" 'SELECT count(*) FROM events') events, $(wc -c < "$db") bytes"
# fs-sim.db: the fs server of one simulated node serving a client (record_fs.c, built beside
# orrery as tests/record_fs) on an image made here the same way every time (fixed times, UUID
# and hash seed; atimes after mtimes, so reading the tree does not change them).
command -v mke2fs >/dev/null || PATH=$PATH:/usr/sbin:/sbin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/make-fs-image.sh" "$tmp/fs.img"
db="$here/fs-sim.db"
rm -f "$db"
"$(dirname "$orrery")/tests/record_fs" "$tmp/fs.img" "$db"
sqlite3 "$db" 'PRAGMA journal_mode=DELETE; PRAGMA page_size=4096; VACUUM;' > /dev/null
echo "fs-sim.db: $(sqlite3 "$db" 'SELECT count(*) FROM events') events, $(wc -c < "$db") bytes"
# httpd-sim.db: node 0 of two simulated nodes (record_httpd.c, built beside orrery as
# tests/record_httpd): its httpd serves pipelined requests and a malformed one from the image of
# make-httpd-image.sh (tcpip and the fs server run beside it).
"$here/make-httpd-image.sh" "$tmp/httpd.img"
db="$here/httpd-sim.db"
rm -f "$db"
"$(dirname "$orrery")/tests/record_httpd" "$tmp/httpd.img" "$db"
sqlite3 "$db" 'PRAGMA journal_mode=DELETE; PRAGMA page_size=4096; VACUUM;' > /dev/null
echo "httpd-sim.db: $(sqlite3 "$db" 'SELECT count(*) FROM events') events, $(wc -c < "$db") bytes"
# kv-sim.db: nodes leader and f1 of three simulated nodes (record_kv.c, built beside orrery as
# tests/record_kv), each on its own copy of make-kv-image.sh's image: kv's leader and follower
# serve kvclient's writes and reads, f1's tcpecho echoes tcpstream's bytes (the third node's).
"$here/make-kv-image.sh" "$tmp/kv.img"
db="$here/kv-sim.db"
rm -f "$db"
"$(dirname "$orrery")/tests/record_kv" "$tmp/kv.img" "$db"
sqlite3 "$db" 'PRAGMA journal_mode=DELETE; PRAGMA page_size=4096; VACUUM;' > /dev/null
echo "kv-sim.db: $(sqlite3 "$db" 'SELECT count(*) FROM events') events, $(wc -c < "$db") bytes"
