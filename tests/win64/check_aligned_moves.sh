#!/bin/sh
# check_aligned_moves.sh OBJDUMP BINARY...: fails when a binary holds a 32- or
# 64-byte vector move to or from memory that faults on a misaligned address
# (vmovaps, vmovapd, vmovdqa, vmovdqa32/64 and the non-temporal vmovnt*).
# GCC bug 54412: for Win64, GCC spills ymm/zmm registers with such moves to
# stack slots Windows aligns to 16 bytes only. The Windows build assembles
# with -muse-unaligned-vector-move, which turns every aligned move into its
# unaligned twin; this checks that none is left (the non-temporal stores
# have no unaligned twin: simdgan must not use them).
set -eu
objdump=$1
shift
status=0
for bin in "$@"; do
    hits=$("$objdump" -d --no-show-raw-insn "$bin" |
        grep -E '\bv(movap[sd]|movdqa(32|64)?|movnt[a-z]*)\b.*%[yz]mm' | grep -F '(' || true)
    n=$(printf '%s' "$hits" | grep -c . || true)
    if [ "$n" -gt 0 ]; then
        echo "$bin: $n aligned 32/64-byte vector moves to or from memory, e.g.:"
        printf '%s\n' "$hits" | head -5
        status=1
    else
        moves=$("$objdump" -d --no-show-raw-insn "$bin" | grep -cE '\bvmov(up[sd]|dqu(8|16|32|64)?)\b.*%[yz]mm' || true)
        echo "$bin: no aligned 32/64-byte vector move to or from memory ($moves unaligned ones)"
    fi
done
exit $status
