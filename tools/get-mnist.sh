#!/bin/sh
# get-mnist.sh: download the four MNIST files into DIR (default
# ./data/MNIST/raw, torchvision's layout, where simdgan looks first).
#
# Usage: tools/get-mnist.sh [DIR]
#
# Each file is fetched from the first mirror that answers (PyTorch's S3 copy,
# then Yann LeCun's site), into a temporary name in DIR, checked against the
# official md5 and only then renamed into place, so an interrupted or failed
# run leaves no partial file. Files already present with the right md5 are
# kept. Needs curl or wget, and md5sum (or md5 on macOS).
#
# Environment: SIMDGAN_MNIST_MIRRORS, space-separated base URLs to try
# instead of the defaults; SIMDGAN_MNIST_TIMEOUT, seconds per download
# (default 300). On failure: one line on stderr, exit status 1.
set -u

dir=${1:-./data/MNIST/raw}
default_mirrors="https://ossci-datasets.s3.amazonaws.com/mnist/ http://yann.lecun.com/exdb/mnist/"
mirrors=${SIMDGAN_MNIST_MIRRORS:-$default_mirrors}
timeout=${SIMDGAN_MNIST_TIMEOUT:-300}

die() {
    echo "get-mnist.sh: $*" >&2
    exit 1
}

if command -v curl >/dev/null 2>&1; then
    fetch() { curl -fsS -L --connect-timeout 10 --max-time "$timeout" -o "$2" "$1" 2>&1; }
elif command -v wget >/dev/null 2>&1; then
    fetch() { wget -q -T 10 -t 1 -O "$2" "$1" 2>&1 || { echo "wget: cannot fetch $1"; return 1; }; }
else
    die "neither curl nor wget found; install one, or copy the four MNIST .gz files into $dir"
fi

if command -v md5sum >/dev/null 2>&1; then
    md5_of() { md5sum "$1" | cut -d' ' -f1; }
elif command -v md5 >/dev/null 2>&1; then
    md5_of() { md5 -q "$1"; }
else
    die "neither md5sum nor md5 found; cannot verify the downloads"
fi

created=""
if [ ! -d "$dir" ]; then
    mkdir -p "$dir" || die "cannot create folder $dir"
    created=$dir
fi
tmp=""
cleanup() {
    [ -n "$tmp" ] && rm -f "$tmp"
    # A folder this run created and left empty goes too.
    [ -n "$created" ] && rmdir "$created" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# name md5, one file a line
files="train-images-idx3-ubyte.gz f68b3c2dcbeaaa9fbdd348bbdeb94873
train-labels-idx1-ubyte.gz d53e105ee54ea40749a09fcbcd1e9432
t10k-images-idx3-ubyte.gz 9fb629c4189551a2d022fa330f9573f3
t10k-labels-idx1-ubyte.gz ec29112dd5afa0611ce80d1b7f02629c"

while read -r name sum; do
    if [ -f "$dir/$name" ] && [ "$(md5_of "$dir/$name")" = "$sum" ]; then
        echo "$dir/$name: present, md5 ok"
        continue
    fi
    tmp="$dir/.$name.part.$$"
    last=""
    done_ok=0
    for base in $mirrors; do
        if err=$(fetch "$base$name" "$tmp"); then
            got=$(md5_of "$tmp")
            if [ "$got" = "$sum" ]; then
                mv -f "$tmp" "$dir/$name" || die "cannot rename $tmp to $dir/$name"
                echo "$dir/$name: from $base, md5 ok"
                done_ok=1
                break
            fi
            last="$base$name has md5 $got, expected $sum"
        else
            last=$(printf '%s' "$err" | tail -n 1)
        fi
        rm -f "$tmp"
    done
    tmp=""
    [ "$done_ok" = 1 ] || die "cannot download $name from any mirror ($mirrors);" \
        "last error: ${last:-unknown}; check the network, or copy the MNIST .gz files into $dir"
done <<EOF
$files
EOF
