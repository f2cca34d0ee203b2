#!/usr/bin/env bash
# fetch-busybox.sh DIR: Debian's busybox-static, unmodified, unpacked into DIR (DIR/bin/busybox).
# The .deb is kept in build/debs/ so that it is fetched once. It comes from the Debian archive
# with `apt-get download` (no root needed); on a machine whose package lists are empty it runs
# `apt-get update` first when it is root. A download that cannot be made is an error that says
# what to do.
set -euo pipefail
dir=$1
debs=build/debs
[ -x "$dir/bin/busybox" ] && exit 0
mkdir -p "$debs"
deb=$(ls "$debs"/busybox-static_*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
    download() { (cd "$debs" && apt-get download busybox-static >/dev/null 2>&1); }
    if ! download; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq >/dev/null 2>&1 || true
        fi
        if ! download; then
            echo "fetch-busybox: cannot download Debian's busybox-static." >&2
            echo "fetch-busybox: run 'apt-get update' (as root), or put busybox-static_*.deb in $debs/, then make again." >&2
            exit 1
        fi
    fi
    deb=$(ls "$debs"/busybox-static_*.deb | head -1)
fi
rm -rf "$dir"
mkdir -p "$dir"
dpkg -x "$deb" "$dir"
[ -x "$dir/bin/busybox" ] || { echo "fetch-busybox: $deb holds no bin/busybox" >&2; exit 1; }
