//! Compiles the C side of the benchmarks (c/bench_c.c) against the public
//! header, as a C user would build it.
fn main() {
    println!("cargo:rerun-if-changed=c/bench_c.c");
    println!("cargo:rerun-if-changed=../include/psyne.h");
    cc::Build::new()
        .file("c/bench_c.c")
        .include("../include")
        .flag("-std=c11")
        .define("_POSIX_C_SOURCE", "200809L")
        .opt_level(2)
        .warnings_into_errors(true)
        .compile("psyne_cbench");
    println!("cargo:rustc-link-lib=pthread");
}
