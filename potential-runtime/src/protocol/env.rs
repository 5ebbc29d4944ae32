//! What a pool hands the workers it spawns, both sides of it, so that the
//! names and the layout are written once.
//!
//! - The environment holds what is not secret: the pool's socket and the
//!   parent's pid (a worker whose parent is already gone exits).
//! - The credentials, the pool's secret and the worker's spawn ticket,
//!   travel through the worker's standard input, a pipe the parent writes
//!   once and closes: they never appear in `/proc/<pid>/environ` (readable
//!   by the same user for the worker's whole life) or on a command line.
//!   A worker's standard input is otherwise unused: it serves and exits,
//!   and the program's own `main` never runs there.

use std::io::{Read, Write};
use std::process::Command;

use super::handshake::{SECRET_LEN, Secret};
use crate::socket::SocketAddress;

/// The pool's socket, `ns:NAME` or `fs:PATH`.
const ENV_SOCKET: &str = "POTENTIAL_RUNTIME_SOCKET";
/// The parent's pid, decimal.
const ENV_PARENT: &str = "POTENTIAL_RUNTIME_PARENT";

/// Every variable of the contract.
pub(crate) const ALL: [&str; 2] = [ENV_SOCKET, ENV_PARENT];

/// The length of the credentials on a worker's standard input: the
/// secret, then the ticket as a `u64` LE.
const CREDENTIALS_LEN: usize = SECRET_LEN + 8;

/// What a worker learns from its pool.
pub(crate) struct WorkerEnv {
    pub(crate) socket: SocketAddress,
    pub(crate) parent: u32,
    pub(crate) secret: Secret,
    pub(crate) ticket: u64,
}

impl WorkerEnv {
    /// Sets the variables of a worker's environment on its command.
    pub(crate) fn apply(&self, command: &mut Command) {
        command
            .env(ENV_SOCKET, self.socket.to_env())
            .env(ENV_PARENT, self.parent.to_string());
    }

    /// Writes the credentials for the worker's standard input.
    pub(crate) fn write_credentials(&self, to: &mut impl Write) -> std::io::Result<()> {
        let mut credentials = [0; CREDENTIALS_LEN];
        credentials[..SECRET_LEN].copy_from_slice(self.secret.bytes());
        credentials[SECRET_LEN..].copy_from_slice(&self.ticket.to_le_bytes());
        to.write_all(&credentials)
    }

    /// Reads the variables, then the credentials from `input`; `None` when
    /// one is missing or malformed.
    pub(crate) fn read(input: &mut impl Read) -> Option<WorkerEnv> {
        let var = |k| std::env::var(k).ok();
        let socket = SocketAddress::from_env(&var(ENV_SOCKET)?)?;
        let parent = var(ENV_PARENT)?.parse().ok()?;
        let mut credentials = [0; CREDENTIALS_LEN];
        input.read_exact(&mut credentials).ok()?;
        let (secret, ticket) = credentials.split_at(SECRET_LEN);
        Some(WorkerEnv {
            socket,
            parent,
            secret: Secret::from_bytes(secret.try_into().ok()?),
            ticket: u64::from_le_bytes(ticket.try_into().ok()?),
        })
    }
}

/// What to do when a worker's `main` did not call [`crate::init`] first,
/// for the errors of both sides.
pub(crate) const INIT_HINT: &str = "add it as the first line of `main`. In a test binary \
    (`#[test]`, `#[tokio::test]`: libtest owns `main`, and each worker runs every test \
    again), write the tests as `async fn`s in a target with `harness = false` that ends \
    with `potential_runtime::worker_tests!(test_a, test_b);` (feature `harness`)";

/// Whether this process was started as a worker (and has not yet run [`crate::init`]).
pub(crate) fn started_as_worker() -> bool {
    std::env::var_os(ENV_SOCKET).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_holds_no_secret_and_the_credentials_round_trip() {
        let sent = WorkerEnv {
            socket: SocketAddress::Namespaced("potential-test".into()),
            parent: 4242,
            secret: Secret::random().unwrap(),
            ticket: 0x0123_4567_89ab_cdef,
        };
        let mut command = Command::new("true");
        sent.apply(&mut command);
        let mut vars: Vec<(String, String)> = command
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
            .collect();
        vars.sort();
        assert_eq!(
            vars,
            [
                (ENV_PARENT.to_owned(), "4242".to_owned()),
                (ENV_SOCKET.to_owned(), "ns:potential-test".to_owned()),
            ]
        );
        let mut stdin = Vec::new();
        sent.write_credentials(&mut stdin).unwrap();
        assert_eq!(stdin.len(), CREDENTIALS_LEN);
        let (secret, ticket) = stdin.split_at(SECRET_LEN);
        assert!(sent.secret.matches(secret));
        assert_eq!(ticket, sent.ticket.to_le_bytes());
        // Short credentials (a parent that died mid-write) are refused.
        let mut short = &stdin[..CREDENTIALS_LEN - 1];
        let mut buf = [0; CREDENTIALS_LEN];
        assert!(short.read_exact(&mut buf).is_err());
    }
}
