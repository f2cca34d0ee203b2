# Machina: `make run` boots it, `make test` proves it. See README.md.
#
#   make run            build everything, boot QEMU headless, console on this terminal
#   make test           lints (fmt, clippy -D warnings), host unit tests, system tests (QEMU)
#   make lint           cargo fmt --check and clippy of every crate, warnings denied
#   make iso            hybrid BIOS/UEFI ISO with real Limine (LIMINE_DIR)
#   make debug          boot paused with a GDB stub on :1234
#   make boot-time      measure QEMU launch -> kernel banner -> first user output
#   make bench          guest instruction counts for IPC and scheduling (-icount)
#   make trace          trace CMD="cat /etc/motd" in the guest: build/trace/ gets text, NDJSON,
#                       Chrome trace-event JSON (Perfetto) and an SVG sequence diagram
#   make fuzz           random calls to every trap: SEED=n CALLS=100000 FUZZ_OPTIONS=a,b
#   make reset-disk     rebuild build/rootfs.img from rootfs/ (what make run wrote is lost)
#   make clean
#
# Variables: BOOT=direct|limine  KLOG=file|term (the kernel log: build/kernel.log, or the terminal)  QEMU_MEMORY=512M  LIMINE_DIR=...

SHELL := /bin/bash
CARGO ?= cargo
PROFILE_DIR := target/x86_64-unknown-none/release
VOLUME := build/volume
SERVERS := block console fs-server personality-unix personality-xv6 personality-template
# Linux programs (Rust std, static musl) that go in /bin on the disk.
USERLAND := hello sh poweroff bench ps servers trace
# xv6 programs (userland/xv6: the xv6 ABI, int $64, no_std) that go in /xv6 on the disk.
XV6_PROGRAMS := sh ls cat echo grep wc mkdir rm ln kill init usertests bench
STAGE := build/rootfs-stage
SYSTEM_CRATES := -p mach-kernel -p bootstrap -p kernel-tests -p server-tests $(addprefix -p ,$(SERVERS))
KERNEL_CRATES := -p direct-loader $(SYSTEM_CRATES)
UNIT_CRATES := -p mach-abi -p mach-kernel -p direct-loader -p libmach -p interfaces -p fs-server -p console -p personality-unix -p personality-xv6 -p system-tests

export BOOT ?= direct
export KLOG ?= file
export QEMU_MEMORY ?= 512M

.PHONY: all setup build run reset-disk test lint unit-test system-test iso debug boot-time bench trace fuzz clean

all: build

setup:
	@scripts/setup.sh

# The boot volume (build/volume) is what real Limine's ISO holds and what the direct loader
# is given: limine.conf, the kernel and the boot modules.
build: setup
	$(CARGO) build --release --target x86_64-unknown-none $(SYSTEM_CRATES)
	@# Alone: built with the others, features the servers' crates turn on (zerocopy's alloc,
	@# for virtio-drivers) would be unified into the loader, which has no heap.
	$(CARGO) build --release --target x86_64-unknown-none -p direct-loader
	@mkdir -p $(VOLUME)/boot/limine
	@cp limine.conf $(VOLUME)/boot/limine/limine.conf
	@cp $(PROFILE_DIR)/mach-kernel $(PROFILE_DIR)/bootstrap $(PROFILE_DIR)/kernel-tests $(PROFILE_DIR)/server-tests $(VOLUME)/boot/
	@cp $(addprefix $(PROFILE_DIR)/,$(SERVERS)) $(VOLUME)/boot/
	@cp $(PROFILE_DIR)/direct-loader build/direct-loader
	$(CARGO) build --release --target x86_64-unknown-none -p xv6
	$(CARGO) build --release --target x86_64-unknown-linux-musl $(addprefix -p ,$(USERLAND))
	@scripts/fetch-busybox.sh build/busybox
	@scripts/stage-rootfs.sh rootfs $(STAGE) build/busybox/bin/busybox $(addprefix target/x86_64-unknown-linux-musl/release/,$(USERLAND))
	@mkdir -p $(STAGE)/tests/busybox && cp -a tests/busybox-scripts/*.sh $(STAGE)/tests/busybox/
	@mkdir -p $(STAGE)/xv6 && cp $(addprefix $(PROFILE_DIR)/,$(XV6_PROGRAMS)) $(STAGE)/xv6/
	@mkdir -p $(STAGE)/template && cp $(PROFILE_DIR)/template-hello $(STAGE)/template/hello
	@# A file nothing reads before tests/tests/trace.rs does (its first read reaches the disk).
	@mkdir -p $(STAGE)/tests/trace && seq 1 30000 > $(STAGE)/tests/trace/numbers.txt
	@scripts/make-disk.sh $(STAGE) build/rootfs.img 1024 64M
	@scripts/make-disk.sh $(STAGE) build/rootfs-4k.img 4096 64M
	@scripts/make-disk.sh rootfs build/small.img 1024 4M

run: build
	@scripts/run-qemu.sh

# make run boots build/rootfs.img itself, so what the system writes stays for the next run;
# this starts again from rootfs/ (and the programs).
reset-disk:
	rm -f build/rootfs.img
	$(MAKE) build

debug: build
	@scripts/run-qemu.sh --debug

test: build lint unit-test system-test

# Every crate, for the target it is built for, warnings denied; formatting checked.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --target x86_64-unknown-none $(SYSTEM_CRATES) -p libmach -p mach-abi -p interfaces -- -D warnings
	$(CARGO) clippy --release --target x86_64-unknown-none -p direct-loader -- -D warnings
	$(CARGO) clippy --release --target x86_64-unknown-none -p xv6 -- -D warnings
	$(CARGO) clippy --release --target x86_64-unknown-linux-musl $(addprefix -p ,$(USERLAND)) -- -D warnings
	$(CARGO) clippy --all-targets $(UNIT_CRATES) -p sh -- -D warnings

unit-test:
	$(CARGO) test --lib $(UNIT_CRATES)
	@# The shell is a program: its unit tests live in the binary, and its own tests run it.
	$(CARGO) test -p sh -p ps -p trace

system-test:
	$(CARGO) test -p system-tests --test '*'

iso: build
	@scripts/make-iso.sh

boot-time: build
	$(CARGO) run --release -q -p system-tests --bin boot-time

bench: build
	$(CARGO) run --release -q -p system-tests --bin bench

# trace CMD at the guest's shell; the files it writes are copied out of the disk (debugfs).
# CMD reaches the program through the environment, so the host's shell never parses it.
export CMD ?= cat /etc/motd
trace: build
	$(CARGO) run --release -q -p system-tests --bin trace-host

# kernel-tests' fuzz case (docs/testing.md): SEED empty = from the clock; the whole kernel log
# ends up in build/fuzz.log; exit status 1 on a failure (the seed and last call are printed).
SEED ?=
CALLS ?= 100000
# The classes of input that found the holes of issue 9 (all fixed) are on unless overridden.
FUZZ_OPTIONS ?= nt,selfrecv,physhigh,anywhere,badreply,fsbase,getself,longvm,taskcycle
fuzz: build
	$(CARGO) run --release -q -p system-tests --bin fuzz -- "$(SEED)" "$(CALLS)" "$(FUZZ_OPTIONS)"

clean:
	rm -rf build
	$(CARGO) clean
