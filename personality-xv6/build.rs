fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rerun-if-changed={dir}/../libmach/user.ld");
    if std::env::var("TARGET").unwrap().ends_with("-none") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/../libmach/user.ld");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    }
}
