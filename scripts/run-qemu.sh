#!/usr/bin/env bash
# Boot Machina in QEMU (TCG), headless. COM1, the system console, is this terminal (or
# stdin/stdout when they are pipes: `make run < script.txt` works). The kernel log (QEMU's
# debugcon) goes to build/kernel.log (KLOG=file, the default) or to this terminal too (KLOG=term).
#
#   BOOT=direct (default)  the direct loader, given the files limine.conf names
#   BOOT=limine            the ISO made by `make iso`, through real Limine (BIOS)
#   BOOT=limine-uefi       the same ISO through UEFI (OVMF, package ovmf; ~5 s slower)
#   --debug                start paused with a GDB stub on localhost:1234
#
# Exit status: 0 when the kernel halted cleanly, 1 after a kernel panic or failed boot.
set -uo pipefail
cd "$(dirname "$0")/.."

args=(-machine pc -accel tcg -m "${QEMU_MEMORY:-512M}" -display none -no-reboot
      -device isa-debug-exit,iobase=0xf4,iosize=0x04
      -drive file=build/rootfs.img,format=raw,if=none,id=disk0 -device virtio-blk-pci,drive=disk0)
case "${KLOG:-file}" in
    term) args+=(-chardev stdio,id=term,mux=on,signal=off -serial chardev:term -device isa-debugcon,iobase=0xe9,chardev=term) ;;
    file) args+=(-serial stdio -debugcon file:build/kernel.log)
          echo "run-qemu: kernel log in build/kernel.log" >&2 ;;
    *) echo "run-qemu: KLOG must be term or file" >&2; exit 2 ;;
esac
case "${BOOT:-direct}" in
    direct)
        volume=build/volume
        files=("$volume/boot/limine/limine.conf")
        while read -r path; do files+=("$volume$path"); done < <(
            sed -nE 's/^[[:space:]]*(kernel_path|path|module_path):[[:space:]]*[a-z]+\([^)]*\):(.*)$/\2/p' limine.conf)
        initrd=$(IFS=,; echo "${files[*]}")
        args+=(-kernel build/direct-loader -initrd "$initrd") ;;
    limine|limine-uefi)
        [ -f build/machina.iso ] || { echo "run-qemu: no build/machina.iso; run 'make iso' first" >&2; exit 2; }
        args+=(-cdrom build/machina.iso -boot d)
        if [ "$BOOT" = limine-uefi ]; then
            ovmf=/usr/share/OVMF
            [ -f $ovmf/OVMF_CODE.fd ] || { echo "run-qemu: UEFI needs OVMF: apt-get install ovmf" >&2; exit 2; }
            cp $ovmf/OVMF_VARS.fd build/ovmf-vars.fd
            args[1]=q35
            args+=(-drive if=pflash,format=raw,readonly=on,file=$ovmf/OVMF_CODE.fd
                   -drive if=pflash,format=raw,file=build/ovmf-vars.fd)
        fi ;;
    *) echo "run-qemu: BOOT must be direct, limine or limine-uefi" >&2; exit 2 ;;
esac
if [ "${1:-}" = --debug ]; then
    args+=(-s -S)
    cat >&2 <<MSG
run-qemu: QEMU is paused with a GDB stub on localhost:1234. In another terminal:
  gdb build/volume/boot/mach-kernel -ex 'target remote :1234' \\
      -ex 'add-symbol-file build/volume/boot/bootstrap' -ex 'break kernel_entry' -ex continue
MSG
fi

qemu-system-x86_64 "${args[@]}"
status=$?
case $status in
    33) exit 0 ;;
    35) echo "run-qemu: the kernel stopped on a failure (see the log above)" >&2; exit 1 ;;
    *) exit $status ;;
esac
