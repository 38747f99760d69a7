#!/usr/bin/env bash
# make-httpd-seeds.sh — seed inputs of fuzz_httpd, made at fuzz time (nothing binary is checked in).
# usage: fuzz/make-httpd-seeds.sh OUTDIR   (OUTDIR is created)
# Each seed is a run of fuzz_httpd's ops (fuzz/fuzz_httpd.c, op()): connections accepted, the
# requests of its vocabulary whole or split, raw request bytes one at a time, holds, FINs,
# resets, time passing, bad fs answers.
set -euo pipefail
out=${1:?usage: make-httpd-seeds.sh OUTDIR}
mkdir -p "$out"
nreq=$(sed -n '/^static const char \*const requests\[\] = {/,/^};/p' "$(dirname "$0")/fuzz_httpd.c" |
    grep -c '^    "')
[ "$nreq" -gt 0 ] || { echo "make-httpd-seeds: no requests found in fuzz_httpd.c" >&2; exit 1; }
hex() { printf '\\x%02x' "$@"; }
accept() { hex 0 "$1"; }                 # op 0: a new connection (remote port 40000 + N)
whole() { hex 3 "$1" "$2" 0 1; }         # op 3: request N of the vocabulary on conn C, whole
split() { hex 3 "$1" "$2"; shift 2; for p in "$@"; do hex "$p" 0 1; done; } # pieces, a step each
raw() { local c=$1 s=$2 i; for ((i = 0; i < ${#s}; i++)); do hex 1 "$c" 1 "'${s:i:1}"; done; }
fin() { hex 6 "$1"; }
reset() { hex 7 "$1" 1; }
hold() { hex 8 "$1"; }
later() { hex 9 "$1"; }                  # op 9: (N + 1) * 50 ms pass
chaos() { hex 10; }
seed() { printf '%b' "$2" >"$out/$1"; }

seed get "$(accept 1)$(whole 0 0)"
all=$(accept 2)
for ((r = 0; r < nreq; r++)); do all+=$(whole 0 "$r"); done
seed keepalive-all "$all"
seed pipelined-held "$(accept 1)$(accept 2)$(hold 0)$(whole 0 22)$(whole 1 3)$(later 3)$(hold 0)$(fin 0)"
seed big-held "$(accept 1)$(hold 0)$(whole 0 3)$(whole 0 4)$(later 1)$(hold 0)$(later 1)"
seed split "$(accept 1)$(split 0 1 0 2 4 8)$(split 0 7 6 0 30)"
seed bytewise "$(accept 1)$(raw 0 $'GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n')"
seed slow-408 "$(accept 1)$(raw 0 'GET / HT')$(later 200)$(later 200)$(accept 2)$(whole 1 0)"
seed chaos "$(chaos)$(accept 1)$(whole 0 3)$(whole 0 0)$(whole 0 8)$(whole 0 9)"
seed reset-mid "$(accept 1)$(hold 0)$(whole 0 3)$(reset 0)$(accept 2)$(whole 0 1)"
seed many "$(for i in $(seq 1 20); do accept $i; done)$(for i in $(seq 0 19); do whole $i 1; done)"
