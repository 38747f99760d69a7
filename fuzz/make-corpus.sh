#!/usr/bin/env bash
# make-corpus.sh — regenerate the seed corpora under fuzz/corpus/ from a recorded session.
# usage: fuzz/make-corpus.sh [BUILD_DIR]   (default build; needs BUILD/orrery, and
#        build/fuzz/fuzz_make_frames from scripts/fuzz for the trace_frame seeds)
# Records the session below deterministically (seed 1), turns it into one input per
# (server, client channel) with `orrery trace corpus`, and writes valid frames for
# trace_frame. Kernel seeds are hand-made; the ether seeds (frames of a `run --pcap` capture
# and two hand-made ones) are kept as they are.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
b=${1:-build}
cd "$top"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%s\n' 'echo hello' ps ipc uptime help 'kill echo' ps 'spawn echo' 'echo again' \
    ps shutdown |
    "$b/orrery" trace record "$tmp/session.db" --deterministic --seed 1 >/dev/null
for t in init echo console shell; do rm -rf "fuzz/corpus/$t"; done
"$b/orrery" trace corpus "$tmp/session.db" fuzz/corpus
if [ -x build/fuzz/fuzz_make_frames ]; then
    rm -rf fuzz/corpus/trace_frame && mkdir -p fuzz/corpus/trace_frame
    build/fuzz/fuzz_make_frames fuzz/corpus/trace_frame
fi
# fuzz_kernel: short scripts (docs/fuzzing.md): channel + send + close; spawn a child and
# message it (reply with hops, exit, panic); timers; a forged handle.
mkdir -p fuzz/corpus/kernel
printf '\x01\x02\x00\x05\x00hello\x03\x00\x03\x01' >fuzz/corpus/kernel/chan-send-close
printf '\x01\x07\x01\x01\x01\x00\x02\x00\x02\x00\x04\x00\x00\x02\x00\x02\x00\x02\x02\x00\x00\x02\x00\x02\x00\x03\x00' \
    >fuzz/corpus/kernel/spawn-message-child
printf '\x04\x05\x00\x10\x00\x06\x00\x00\x0c\x05\x00\x03\x05\x0a\x03\x03' >fuzz/corpus/kernel/timers-forged
ls fuzz/corpus/*/ | head -50
