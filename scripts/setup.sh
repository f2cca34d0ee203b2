#!/usr/bin/env bash
# Install what the build and QEMU need, when it is missing: the Rust targets (rustup) and,
# as root with apt-get, qemu-system-x86, e2fsprogs, xorriso and mtools. Without root, name
# the packages to install and stop.
set -euo pipefail

need_targets=()
installed=$(rustup target list --installed 2>/dev/null || true)
for t in x86_64-unknown-none x86_64-unknown-linux-musl; do
    grep -qx "$t" <<<"$installed" || need_targets+=("$t")
done
if ((${#need_targets[@]})); then
    echo "setup: rustup target add ${need_targets[*]}"
    rustup target add "${need_targets[@]}"
fi

declare -A package_of=([qemu-system-x86_64]=qemu-system-x86 [mke2fs]=e2fsprogs [e2fsck]=e2fsprogs [debugfs]=e2fsprogs
                       [xorriso]=xorriso [mcopy]=mtools)
missing=()
for tool in "${!package_of[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/sbin/$tool" ] || [ -x "/usr/sbin/$tool" ] \
        || missing+=("${package_of[$tool]}")
done
if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: apt-get install ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: missing packages: ${missing[*]}" >&2
        echo "setup: install them with: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi
