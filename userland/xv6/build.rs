//! Build script: links every program of this crate with `xv6.ld` when it is built for the
//! bare-metal target (the layout the personality loads, with the `.note.machina` note).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    println!("cargo:rerun-if-changed={dir}/xv6.ld");
    if target.ends_with("-none") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/xv6.ld");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    }
}
