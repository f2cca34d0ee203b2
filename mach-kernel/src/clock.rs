//! The clocks: time since boot from the timer's ticks, and the wall clock, which is the CMOS
//! real-time clock read once at boot plus the time since. `clock_read` gives either to any
//! task: reading the time is no privilege.
//!
//! It must never touch the CMOS after boot (its ports may be granted to a driver), and never
//! wait on it for long: a clock stuck in an update gives up and reads 1970.

use crate::arch::cpu::{inb, outb};
use core::sync::atomic::{AtomicU64, Ordering};
use mach_abi::KernelError;

/// The wall clock at boot, in seconds since 1970.
static BOOT_SECONDS: AtomicU64 = AtomicU64::new(0);

const CMOS_INDEX: u16 = 0x70;
const CMOS_DATA: u16 = 0x71;

fn cmos(register: u8) -> u8 {
    // SAFETY: ports 0x70/0x71 are the CMOS's; reading a register has no other effect, and
    // only the boot processor runs this, before any task could be granted these ports.
    unsafe {
        outb(CMOS_INDEX, register);
        inb(CMOS_DATA)
    }
}

/// Read the CMOS clock (once, at boot) and keep it as the boot time.
pub fn init() {
    let mut tries = 0;
    while cmos(0x0a) & 0x80 != 0 && tries < 100_000 {
        tries += 1;
    }
    let status_b = cmos(0x0b);
    let bcd = status_b & 0x04 == 0;
    let value = |r: u8| {
        let v = cmos(r);
        if bcd { (v & 0x0f) + (v >> 4) * 10 } else { v }
    };
    let (second, minute) = (value(0x00), value(0x02));
    let hour_raw = cmos(0x04);
    let pm = hour_raw & 0x80 != 0;
    let hour_value = hour_raw & 0x7f;
    let mut hour = if bcd { (hour_value & 0x0f) + (hour_value >> 4) * 10 } else { hour_value };
    if status_b & 0x02 == 0 && pm {
        hour = (hour % 12) + 12;
    }
    let (day, month, year) = (value(0x07), value(0x08), value(0x09));
    let seconds =
        unix_seconds(2000 + year as u64, month as u64, day as u64, hour as u64, minute as u64, second as u64);
    BOOT_SECONDS.store(seconds, Ordering::Relaxed);
}

/// Seconds since 1970 of a date in the Gregorian calendar (years from 2000 on).
pub fn unix_seconds(year: u64, month: u64, day: u64, hour: u64, minute: u64, second: u64) -> u64 {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return 0;
    }
    // Days from 1970-01-01 to the date: count years from March so leap days come last.
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era_days = y * 365 + y / 4 - y / 100 + y / 400 + (153 * m + 2) / 5 + day - 1;
    let days = era_days - 719_468; // days from 0000-03-01 to 1970-01-01
    days * 86_400 + hour * 3600 + minute * 60 + second
}

/// Nanoseconds since boot (the timer's resolution: one tick).
pub fn uptime_ns() -> u64 {
    let ticks = crate::trap::TICKS.load(Ordering::Relaxed);
    ticks.saturating_mul(1_000_000_000 / crate::arch::pic::TIMER_HZ)
}

/// `clock_read(clock)`: nanoseconds since boot (`clock::MONOTONIC`) or since 1970
/// (`clock::REALTIME`).
pub fn clock_read(clock: u64) -> Result<u64, KernelError> {
    match clock {
        mach_abi::clock::MONOTONIC => Ok(uptime_ns()),
        mach_abi::clock::REALTIME => {
            Ok(BOOT_SECONDS.load(Ordering::Relaxed).saturating_mul(1_000_000_000).saturating_add(uptime_ns()))
        }
        _ => Err(KernelError::InvalidArgument),
    }
}
