//! Chooses the platform path, the one switch of the runtime's platform
//! code (which lives in `src/sys/`, one module per mechanism, and in
//! `src/shared/`, the shared-memory mechanism).
//!
//! `cfg(potential_linux)` marks the Linux mechanisms: the shared-memory
//! region (memfd and `SCM_RIGHTS`), the parent-death signal, glibc's
//! allocator settings and the socket's send buffer. (The peer's uid is
//! checked on every Unix, through interprocess's `peer_creds`.) Elsewhere (and with
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
