#!/usr/bin/env bash
# stage-rootfs.sh SOURCE STAGE BUSYBOX PROGRAM...: the disk image's files: SOURCE (rootfs/),
# our Linux programs in /bin (stripped of their debug information), and Debian's busybox as
# /bin/busybox with a link in /bin for each of its applets that is not one of our programs
# (so /bin/sh stays our shell; busybox's is `busybox sh`, or /bin/ash). Files keep their times
# (cp -a) and a program is copied only when newer, so make-disk.sh rebuilds the images only
# when something changed.
set -euo pipefail
source=$1 stage=$2 busybox=$3
shift 3
mkdir -p "$stage/bin"
cp -a "$source/." "$stage/"
ours=()
for program in "$@"; do
    name=$(basename "$program")
    ours+=("$name")
    target="$stage/bin/$name"
    [ -L "$target" ] && rm -f "$target" # an applet's link where our program now goes
    if [ ! -f "$target" ] || [ "$program" -nt "$target" ]; then
        strip --strip-debug -o "$target" "$program"
    fi
done
if [ ! -f "$stage/bin/busybox" ] || [ "$busybox" -nt "$stage/bin/busybox" ]; then
    cp -a "$busybox" "$stage/bin/busybox"
fi
# The applets, as the binary itself lists them (it runs on the host: static x86-64 Linux).
for applet in $("$busybox" --list); do
    case " ${ours[*]} busybox " in *" $applet "*) continue ;; esac
    [ -L "$stage/bin/$applet" ] || ln -s busybox "$stage/bin/$applet"
done
