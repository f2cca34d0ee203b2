//! init: the first process of the xv6 personality; xv6's `init.c`. It opens the console as
//! fds 0, 1 and 2 (making the device file `console` if it is missing), then runs `/xv6/sh`
//! and, each time the shell exits, starts it again; it reaps the orphans it inherits on the
//! way. With the argument `once` it exits when the shell does (so that a test can end).
#![no_std]
#![no_main]

use xv6::{O_RDWR, dup, exec, exit, fork, mknod, open, printf, wait};

xv6::entry!(main);

/// The console's device numbers.
const CONSOLE_MAJOR: i16 = 1;
const CONSOLE_MINOR: i16 = 1;

fn main(args: &[&str]) {
    let once = args.get(1) == Some(&"once");
    if open("console", O_RDWR) < 0 {
        mknod("console", CONSOLE_MAJOR, CONSOLE_MINOR);
        open("console", O_RDWR);
    }
    dup(0); // standard output
    dup(0); // standard error

    loop {
        printf!(1, "init: starting sh\n");
        let pid = fork();
        if pid < 0 {
            printf!(1, "init: fork failed\n");
            exit()
        }
        if pid == 0 {
            exec("/xv6/sh", &["sh"]);
            printf!(1, "init: exec sh failed\n");
            exit()
        }
        // Wait for the shell; other children are orphans given to init: reap them.
        loop {
            let wpid = wait();
            if wpid == pid || wpid < 0 {
                break;
            }
            printf!(1, "zombie!\n");
        }
        printf!(1, "init: sh exited\n");
        if once {
            exit()
        }
    }
}
