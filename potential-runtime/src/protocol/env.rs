//! The environment contract between a pool and the workers it spawns:
//! both sides of it, so that the names are written once.

use std::process::Command;

use super::handshake::Secret;
use crate::socket::SocketAddress;

/// The pool's socket, `ns:NAME` or `fs:PATH`.
const ENV_SOCKET: &str = "POTENTIAL_RUNTIME_SOCKET";
/// The pool's secret, hex.
const ENV_SECRET: &str = "POTENTIAL_RUNTIME_SECRET";
/// The spawn ticket, decimal.
const ENV_TICKET: &str = "POTENTIAL_RUNTIME_TICKET";
/// The parent's pid, decimal: a worker whose parent is already gone exits.
const ENV_PARENT: &str = "POTENTIAL_RUNTIME_PARENT";

/// Every variable of the contract.
pub(crate) const ALL: [&str; 4] = [ENV_SOCKET, ENV_SECRET, ENV_TICKET, ENV_PARENT];

/// What a worker reads from its environment.
pub(crate) struct WorkerEnv {
    pub(crate) socket: SocketAddress,
    pub(crate) secret: Secret,
    pub(crate) ticket: u64,
    pub(crate) parent: u32,
}

impl WorkerEnv {
    /// Sets the variables of a worker's environment on its command.
    pub(crate) fn apply(&self, command: &mut Command) {
        command
            .env(ENV_SOCKET, self.socket.to_env())
            .env(ENV_SECRET, self.secret.to_hex())
            .env(ENV_TICKET, self.ticket.to_string())
            .env(ENV_PARENT, self.parent.to_string());
    }

    /// Reads the variables; `None` when one is missing or malformed.
    pub(crate) fn read() -> Option<WorkerEnv> {
        let var = |k| std::env::var(k).ok();
        Some(WorkerEnv {
            socket: SocketAddress::from_env(&var(ENV_SOCKET)?)?,
            secret: Secret::from_hex(&var(ENV_SECRET)?)?,
            ticket: var(ENV_TICKET)?.parse().ok()?,
            parent: var(ENV_PARENT)?.parse().ok()?,
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
    fn a_worker_reads_back_what_its_pool_set() {
        let sent = WorkerEnv {
            socket: SocketAddress::Namespaced("potential-test".into()),
            secret: Secret::from_bytes([7; super::super::handshake::SECRET_LEN]),
            ticket: 42,
            parent: 4242,
        };
        let mut command = Command::new("true");
        sent.apply(&mut command);
        let vars: Vec<_> = command
            .get_envs()
            .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
            .collect();
        assert_eq!(vars.len(), ALL.len());
        let value = |name: &str| {
            vars.iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.clone())
                .and_then(|v| v.into_string().ok())
                .unwrap()
        };
        assert_eq!(
            SocketAddress::from_env(&value(ENV_SOCKET)),
            Some(sent.socket)
        );
        assert!(Secret::from_hex(&value(ENV_SECRET)) == Some(sent.secret));
        assert_eq!(value(ENV_TICKET), "42");
        assert_eq!(value(ENV_PARENT), "4242");
    }
}
