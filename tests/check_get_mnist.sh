#!/bin/sh
# check_get_mnist.sh: tools/get-mnist.sh's failure paths, with no network.
#
# Usage: check_get_mnist.sh GET_MNIST_SH WORK_DIR
#
# 1. An unreachable mirror (a closed port on localhost).
# 2. A mirror (a file:// folder) serving a file with the wrong md5.
# Each run must exit non-zero with exactly one line on stderr, naming the
# file, and leave no file behind in the target folder.
set -u
script=$1
work=$2
rm -rf "$work"
mkdir -p "$work/mirror" || exit 1
echo "not MNIST" > "$work/mirror/train-images-idx3-ubyte.gz"
fail=0

run_case() {   # label mirrors expected-text
    target="$work/out"
    rm -rf "$target"
    SIMDGAN_MNIST_MIRRORS=$2 SIMDGAN_MNIST_TIMEOUT=20 sh "$script" "$target" \
        >"$work/stdout" 2>"$work/stderr"
    rc=$?
    lines=$(wc -l <"$work/stderr")
    left=$(find "$target" -type f 2>/dev/null | wc -l)
    if [ "$rc" = 0 ] || [ "$lines" != 1 ] || [ "$left" != 0 ] ||
        ! grep -q "train-images-idx3-ubyte.gz" "$work/stderr" ||
        ! grep -q "$3" "$work/stderr"; then
        echo "FAILED: $1: exit $rc, $lines stderr lines, $left files left:" >&2
        cat "$work/stderr" >&2
        fail=1
    else
        echo "ok, $1: $(cat "$work/stderr")"
    fi
}

run_case "unreachable mirror" "http://127.0.0.1:9/" "cannot download"
if command -v curl >/dev/null 2>&1; then   # wget has no file:// URLs
    run_case "wrong md5" "file://$work/mirror/" "expected f68b3c2dcbeaaa9fbdd348bbdeb94873"
fi
rm -rf "$work"
exit "$fail"
