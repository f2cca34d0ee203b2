//! poweroff: sync the file system and power the machine off, as `poweroff -f` does on Linux
//! (busybox's `poweroff` looks for init through /proc, which Machina has not). On Machina the
//! Unix personality ends every process, bootstrap syncs the file system again and halts, and
//! QEMU exits with the halt status (`make run` then exits 0).
fn main() {
    if std::env::args().nth(1).is_some_and(|a| a == "--help" || a == "-h") {
        println!("usage: poweroff\nSync the file system and power the machine off.");
        return;
    }
    // SAFETY: sync and reboot take no pointers; reboot ends this process when it succeeds.
    let result = unsafe {
        libc::sync();
        libc::reboot(libc::LINUX_REBOOT_CMD_POWER_OFF)
    };
    eprintln!("poweroff: {}", std::io::Error::last_os_error());
    std::process::exit(if result == 0 { 0 } else { 1 });
}
