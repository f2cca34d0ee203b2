//! Build script: links both programs of this crate with libmach's `user.ld` (linked at 4 MiB,
//! one page-aligned segment per permission, as the loaders want) when they are built for the
//! bare-metal target. It must never do anything else: the crate builds like any other.
use std::path::Path;

/// libmach, from this folder: beside it in the repository.
const LIBMACH: &str = "../libmach";

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let script = Path::new(&dir).join(LIBMACH).join("user.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    if target.ends_with("-none") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    }
}
