//! The `unix` protocol: the Unix personality's service port (bootstrap name "unix"), for
//! other personalities and servers. Ids 0x500..0x5ff.
//!
//! A pipe's ends are ports the personality serves with the `io` protocol (read on the read
//! end, write on the write end, stat, readiness), with a pipe's rules: a read waits for data
//! or the end of the writers, a write waits for room and fails with `BrokenPipe` when no
//! reader is left. A send right to an end counts as an open end while it exists, as a
//! process's descriptor does: when the last goes (no more senders), that end is closed.

use crate::Error;

crate::protocol!(OPERATIONS = "unix";
    /// A new pipe: the answer carries a send right to its read end (port descriptor 0) and
    /// one to its write end (port descriptor 1).
    MakePipe "pipe" = 0x501, () => Result<(), Error>;
);
