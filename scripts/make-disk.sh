#!/usr/bin/env bash
# make-disk.sh DIR IMAGE [BLOCK_SIZE [SIZE]]: an ext2 (revision 1) image holding DIR, made
# without root by mke2fs -d, then checked with e2fsck. Rebuilt only when DIR or this script
# changed. Defaults: 1 KiB blocks, 64 MiB.
set -euo pipefail
dir=$1 image=$2 block=${3:-1024} size=${4:-64M}
PATH=$PATH:/sbin:/usr/sbin
if [ -f "$image" ] && [ -z "$(find "$dir" "$0" -newer "$image" -print -quit)" ]; then
    exit 0
fi
rm -f "$image"
out=$(mke2fs -q -t ext2 -r 1 -b "$block" -L machina -d "$dir" "$image" "$size" 2>&1) || { echo "$out" >&2; exit 1; }
out=$(e2fsck -fn "$image" 2>&1) || { echo "$out" >&2; echo "make-disk: $image is not clean" >&2; exit 1; }
