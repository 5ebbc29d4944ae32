//! Chooses the platform path, the one seam of the runtime's platform code.
//!
//! `cfg(potential_linux)` marks the Linux mechanisms: the shared-memory
//! region (memfd and `SCM_RIGHTS`), the peer's credentials, the parent-death
//! signal and the socket's send buffer. Elsewhere (and with
//! `--cfg potential_portable`, which `.ci/run` checks on Linux) the
//! portable path compiles instead: every reply through the socket, the
//! socket's private directory as the only guard.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(potential_linux)");
    println!("cargo::rustc-check-cfg=cfg(potential_portable)");
    println!("cargo::rerun-if-changed=build.rs");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let portable = std::env::var_os("CARGO_CFG_POTENTIAL_PORTABLE").is_some();
    if linux && !portable {
        println!("cargo::rustc-cfg=potential_linux");
    }
}
