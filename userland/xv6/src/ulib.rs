//! The modules of ulib, named after the xv6 files they stand for.

pub mod printf;
pub mod start;
pub mod string;
pub mod sys;
pub mod umalloc;
