#!/usr/bin/env bash
# make-iso.sh: build/machina.iso, a hybrid BIOS/UEFI ISO booting the boot volume
# (build/volume: limine.conf, kernel, modules) with real Limine 8.x.
#
# Limine's binaries come from LIMINE_DIR, else /usr/share/limine or /usr/local/share/limine,
# laid out as Limine's vN.x-binary branches: limine-bios.sys, limine-bios-cd.bin,
# limine-uefi-cd.bin, BOOTX64.EFI, and the `limine` host utility (built from the shipped
# limine.c when absent).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${LIMINE_DIR:-}
if [ -z "$dir" ]; then
    for candidate in /usr/share/limine /usr/local/share/limine; do
        [ -f "$candidate/limine-bios.sys" ] && { dir=$candidate; break; }
    done
fi
files=(limine-bios.sys limine-bios-cd.bin limine-uefi-cd.bin BOOTX64.EFI)
for f in "${files[@]}"; do
    if [ -z "$dir" ] || [ ! -f "$dir/$f" ]; then
        cat >&2 <<MSG
make iso: Limine's binaries were not found (${dir:-no LIMINE_DIR, nothing in /usr/share/limine}; missing $f).
Get the Limine 8.x binary release and point LIMINE_DIR at it, for example:
    git clone https://github.com/limine-bootloader/limine.git --branch=v8.x-binary --depth=1 ~/limine
    LIMINE_DIR=~/limine make iso
(or install a distribution's limine package, which puts them in /usr/share/limine).
MSG
        exit 1
    fi
done

# The `limine` host utility, for `limine bios-install`.
tool=""
if [ -x "$dir/limine" ]; then
    tool=$dir/limine
elif [ -f "$dir/limine.c" ]; then
    mkdir -p build/limine-tool
    cp "$dir/limine.c" "$dir/Makefile" build/limine-tool/
    [ -f "$dir/limine-bios-hdd.h" ] && cp "$dir/limine-bios-hdd.h" build/limine-tool/
    make -s -C build/limine-tool limine >/dev/null
    tool=build/limine-tool/limine
elif command -v limine >/dev/null; then
    tool=$(command -v limine)
else
    echo "make iso: no 'limine' utility in $dir and no limine.c to build it from" >&2
    exit 1
fi

root=build/iso_root
rm -rf "$root"
mkdir -p "$root/EFI/BOOT"
cp -r build/volume/boot "$root/"
cp "$dir/limine-bios.sys" "$dir/limine-bios-cd.bin" "$dir/limine-uefi-cd.bin" "$root/boot/limine/"
cp "$dir/BOOTX64.EFI" "$root/EFI/BOOT/"
xorriso -as mkisofs -quiet -R -r -J -b boot/limine/limine-bios-cd.bin \
    -no-emul-boot -boot-load-size 4 -boot-info-table -hfsplus \
    -apm-block-size 2048 --efi-boot boot/limine/limine-uefi-cd.bin \
    -efi-boot-part --efi-boot-image --protective-msdos-label \
    "$root" -o build/machina.iso
"$tool" bios-install build/machina.iso 2>/dev/null
echo "make iso: build/machina.iso ($(du -h build/machina.iso | cut -f1)); boot it with: BOOT=limine make run"
