#!/usr/bin/env bash
# stage-rootfs.sh SOURCE STAGE PROGRAM...: the disk image's files: SOURCE (rootfs/) with the
# Linux programs put in /bin, stripped of their debug information. Files keep their times
# (cp -a) and a program is copied only when newer, so make-disk.sh rebuilds the images only
# when something changed.
set -euo pipefail
source=$1 stage=$2
shift 2
mkdir -p "$stage/bin"
cp -a "$source/." "$stage/"
for program in "$@"; do
    target="$stage/bin/$(basename "$program")"
    if [ ! -f "$target" ] || [ "$program" -nt "$target" ]; then
        strip --strip-debug -o "$target" "$program"
    fi
done
