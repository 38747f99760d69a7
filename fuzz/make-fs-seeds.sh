#!/usr/bin/env bash
# make-fs-seeds.sh — seed inputs of fuzz_fs, made at fuzz time (nothing binary is checked in).
# usage: fuzz/make-fs-seeds.sh OUTDIR   (needs mke2fs from e2fsprogs; OUTDIR is created)
# Each seed is fuzz_fs's input (fuzz/fuzz_fs.c): a u16 that selects the disk's sectors, the
# image made by `mke2fs -t ext2 -d` from a small tree (a file, a directory two deep, a 40000-byte
# file that needs indirect blocks with 1 KiB blocks, a symlink, an empty file, a sparse one),
# then a fixed run of ops: open and read /file, readdir /, mkdir /d2, create /d2/f1 and write
# 1 KiB, fsync, rename it to /b, unlink /file, truncate, sync, time for the write-back.
# Images: 1 KiB and 4 KiB blocks, revisions 0 and 1, 256 KiB; and one of 64 KiB; two with a
# run of the other ops (ops-more-*). Last, a regression input (eio-writeback, below).
set -euo pipefail
out=${1:?usage: make-fs-seeds.sh OUTDIR}
command -v mke2fs >/dev/null || PATH=$PATH:/usr/sbin:/sbin
command -v mke2fs >/dev/null || { echo "make-fs-seeds: mke2fs not found (e2fsprogs)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out" "$tmp/d/dir/sub" "$tmp/small"
echo hello >"$tmp/d/file"
echo a >"$tmp/d/a"
# 40000 bytes of a fixed pattern (no randomness: the seeds are the same every time)
awk 'BEGIN { for (i = 0; i < 4000; i++) printf "%09d\n", i * 7919 }' >"$tmp/d/big"
ln -s file "$tmp/d/link"
: >"$tmp/d/empty"
truncate -s 20000 "$tmp/d/hole"
echo deep >"$tmp/d/dir/sub/deep"
echo x >"$tmp/small/x"
# ops (fuzz_fs.c, op()): open /file READ; read 1 KiB at 0; open /. READ; readdir from 0;
# mkdir /d2; open /d2/f1 WRITE|CREAT; write 1 KiB of 'A' at 0; fsync; rename /d2/f1 /b;
# unlink /file; truncate the newest to 8 KiB; sync; 0.6 s pass.
ops='\x00\x00\x00\x03\x02\x00\x00\x00\x20\x00\x00\x00\x07\x05\x00\x00\x06\x00\x0f'
ops+='\x00\x02\x01\x0f\x0e\x03\x00\x00\x00\x40\x41\x0b\x01\x00\x09\x01\x0f\x0e\x00\x01'
ops+='\x07\x00\x03\x0a\x01\x00\x00\x10\x0b\x03\x00\x0f\x05'
seed() { # name blocksize revision size-in-KiB tree [ops]
    local name=$1 b=$2 r=$3 kib=$4 tree=$5 o=${6:-$ops}
    mke2fs -q -F -t ext2 -b "$b" -r "$r" -N 32 -m 0 -d "$tree" "$tmp/img" "${kib}k" >/dev/null
    truncate -s "${kib}k" "$tmp/img" # mke2fs leaves a new file short of its unused tail
    local sectors=$((kib * 2)) sel=$((kib * 2 - 128))
    {
        printf "\\x$(printf %02x $((sel & 255)))\\x$(printf %02x $((sel >> 8)))"
        cat "$tmp/img"
        printf '%b' "$o"
    } >"$out/$name"
    rm -f "$tmp/img"
    [ "$sectors" -ge 128 ] && [ "$sectors" -le 512 ]
}
seed ext2-1k-rev0 1024 0 256 "$tmp/d"
seed ext2-1k-rev1 1024 1 256 "$tmp/d"
seed ext2-4k-rev0 4096 0 256 "$tmp/d"
seed ext2-4k-rev1 4096 1 256 "$tmp/d"
seed ext2-1k-rev1-64k 1024 1 64 "$tmp/small"
# The other ops, for the ops of a seed are the only ones a mutation finds near (a mutation of the
# 256 KiB image seldom lands in them): mkdir /d2 and /d2/sub; rename /d2 into its own subtree
# and /dir/.. to /b; open /big, read far past its end and near its start; three messages of
# the fs interface with fields from the bytes (op 13); symlink /f1 -> /file; rmdir /d2/sub and
# /d2; stat, fsync, statfs, sync; close; hold the device's completions and read; fail the next
# 3 and sync; open a raw path; unlink /../../file; 0.6 s pass.
more='\x06\x00\x0f\x06\x01\x0f\x05\x09\x00\x0f\x02\x0f\x05\x06\x09\x01\x02\x08\x00\x01'
more+='\x00\x00\x00\x09\x02\x00\xc8\x00\x00\x00\x00\x00\x01\x00\x00\x20\x02\x00\x10\x05\x40'
more+='\x0d\x00\x00\x07\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x04/big'
more+='\x0d\x05\x01\x00\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'
more+='\x0d\x0b\x00\x00\x03\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'
more+='\x0a\x00\x00\x03\x00\x0e\x08\x01\x0f\x05\x08\x00\x0f'
more+='\x0b\x00\x00\x0b\x01\x00\x0b\x02\x00\x0b\x03\x00\x0c\x00'
more+='\x0e\x01\x02\x00\x00\x00\x10\x0e\x00\x02\x0b\x03\x00'
more+='\x00\x00\xff\x05ab\x00cd\x07\x02\x08\x08\x03\x0f\x05'
seed ops-more-1k 1024 1 256 "$tmp/d" "$more"
seed ops-more-4k 4096 0 256 "$tmp/d" "$more"
# A regression: open /x read-write, write 1 KiB, fail the next 3 device requests, let the
# write-back run (its writes fail: the volume turns read-only and stays dirty), more time. The
# server once re-armed its write-back timer in the past for ever here (a hang).
seed eio-writeback 1024 1 64 "$tmp/small" \
    '\x00\x01\x00\x06\x03\x00\x00\x00\x40\x41\x0e\x02\x02\x0f\x05\x0f\x05'
