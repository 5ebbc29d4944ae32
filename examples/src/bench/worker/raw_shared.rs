//! The raw shared-memory exchange, the floor of `worker_logw_next_50k`:
//! what any transport of a reply through memory shared with a worker
//! costs, with none of the pool's machinery. The reference server (a child
//! process) makes its weights anew (a copy, as the row's potential does),
//! copies them into a region it shares with this process and answers with
//! a small reply; this process copies them out into a new vector. Two
//! copies across the two processes and one in the server, against the
//! row's reference of one copy in a warm cache.

use std::io;
use std::os::fd::AsRawFd;

use potential_runtime::shared::Region;

/// Where the reference server finds the region: a `/proc` path of this
/// process's descriptor, which the server opens as its own.
const ENV_REGION: &str = "POTENTIAL_BENCH_REFERENCE_REGION";

/// This process's end: the region, made here.
pub(super) struct Shared {
    region: Region,
}

impl Shared {
    /// A region of `bytes`, and the variable that gives it to a reference
    /// server started with it in its environment.
    pub(super) fn create(bytes: usize) -> io::Result<(Shared, (&'static str, String))> {
        let region = Region::create(bytes)?;
        let path = format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            region.fd().as_raw_fd()
        );
        Ok((Shared { region }, (ENV_REGION, path)))
    }

    /// The `count` values the server placed, copied into a new vector.
    pub(super) fn read(&self, count: usize) -> io::Result<Vec<f64>> {
        let mut values = Vec::with_capacity(count);
        self.region
            .read_f64s(0, count, &mut values)
            .map_err(io::Error::other)?;
        Ok(values)
    }
}

/// In the reference server: the region this process was given, if any.
pub(super) fn open_from_env() -> io::Result<Option<Region>> {
    let Some(path) = std::env::var_os(ENV_REGION) else {
        return Ok(None);
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    Region::open(file.into()).map(Some)
}

/// In the reference server: weights made anew from `values` and copied
/// into `region`, where [`Shared::read`] finds them.
pub(super) fn place(region: &Region, values: &[f64]) -> io::Result<()> {
    let fresh = values.to_vec();
    region
        .write(0, bytemuck::cast_slice(&fresh))
        .map_err(io::Error::other)
}
