//! Where a pool listens: an unguessable local-socket name.

use std::io;
use std::path::{Path, PathBuf};

use interprocess::local_socket::{
    GenericFilePath, GenericNamespaced, Name, NameType, ToFsName, ToNsName,
};

use crate::sys;

/// Where the pool's socket lives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SocketLocation {
    /// The platform's namespace for local sockets: the abstract namespace
    /// on Linux (no file at all), a named pipe on Windows. Where no such
    /// namespace exists, a private directory under the temporary directory,
    /// as with [`SocketLocation::Directory`].
    #[default]
    Namespaced,
    /// A socket file in a new private directory (mode `0700`, random name)
    /// created under the given directory and removed with the pool.
    Directory(PathBuf),
}

/// The address of one pool's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketAddress {
    /// A name in the abstract namespace (Linux) or a named pipe (Windows).
    Namespaced(String),
    /// A socket file, inside the private directory of the pool.
    Path(PathBuf),
}

impl SocketAddress {
    /// The name to listen on or connect to.
    pub fn to_name(&self) -> io::Result<Name<'static>> {
        match self {
            SocketAddress::Namespaced(n) => n.clone().to_ns_name::<GenericNamespaced>(),
            SocketAddress::Path(p) => p.clone().to_fs_name::<GenericFilePath>(),
        }
    }

    /// The form passed to a worker in its environment.
    pub(crate) fn to_env(&self) -> String {
        match self {
            SocketAddress::Namespaced(n) => format!("ns:{n}"),
            SocketAddress::Path(p) => format!("fs:{}", p.display()),
        }
    }

    /// Parses [`to_env`](Self::to_env)'s form.
    pub(crate) fn from_env(s: &str) -> Option<SocketAddress> {
        if let Some(n) = s.strip_prefix("ns:") {
            Some(SocketAddress::Namespaced(n.to_string()))
        } else {
            s.strip_prefix("fs:")
                .map(|p| SocketAddress::Path(PathBuf::from(p)))
        }
    }
}

impl std::fmt::Display for SocketAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketAddress::Namespaced(n) => write!(f, "@{n}"),
            SocketAddress::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// 128 random bits as hex: nobody guesses the name of a pool's socket.
fn random_tag() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(io::Error::other)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A fresh address, and the private directory to remove with the pool.
pub(crate) fn fresh_address(
    location: &SocketLocation,
) -> io::Result<(SocketAddress, Option<PathBuf>)> {
    let tag = random_tag()?;
    match location {
        SocketLocation::Namespaced if GenericNamespaced::is_supported() => {
            Ok((SocketAddress::Namespaced(format!("potential-{tag}")), None))
        }
        SocketLocation::Namespaced => private_dir(&std::env::temp_dir(), &tag),
        SocketLocation::Directory(parent) => private_dir(parent, &tag),
    }
}

/// The name of a pool's private directory: `potential-PID-TAG`, the pid of
/// the process that owns the pool, so that a later start can tell a dead
/// pool's directory from a live one's.
fn dir_name(pid: u32, tag: &str) -> String {
    format!("potential-{pid}-{tag}")
}

/// The pid in a pool directory's name, when the name is one.
fn owner_of(name: &str) -> Option<u32> {
    let (pid, tag) = name.strip_prefix("potential-")?.split_once('-')?;
    let hex = tag.len() == 32 && tag.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| pid.parse().ok()).flatten()
}

/// Removes the private directories that pools of dead processes left in
/// `parent` (a pool killed by `SIGKILL` cannot remove its own): those named
/// for a pid that no longer runs, that are directories (never a link,
/// which could lead anywhere) owned by this user. Only a directory holding
/// nothing but the socket goes; anything else stays.
fn sweep(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_of) else {
            continue;
        };
        if pid == std::process::id() || sys::dir::alive(pid) {
            continue;
        }
        let dir = entry.path();
        if !sys::dir::own_directory(&dir) {
            continue;
        }
        let _ = std::fs::remove_file(dir.join(SOCKET_FILE));
        if std::fs::remove_dir(&dir).is_ok() {
            tracing::info!(dir = %dir.display(), pid, "removed a dead pool's socket directory");
        }
    }
}

/// The socket file's name in a pool's private directory.
const SOCKET_FILE: &str = "pool.sock";

fn private_dir(parent: &Path, tag: &str) -> io::Result<(SocketAddress, Option<PathBuf>)> {
    sweep(parent);
    let dir = parent.join(dir_name(std::process::id(), tag));
    // `create` (not `create_all`) fails if the path exists: nobody can
    // plant the directory before us.
    sys::dir::private_builder().create(&dir)?;
    Ok((SocketAddress::Path(dir.join(SOCKET_FILE)), Some(dir)))
}

/// Removes the socket file and the private directory; gone already is fine.
pub(crate) fn remove_private_dir(address: &SocketAddress, dir: Option<&Path>) {
    if let SocketAddress::Path(p) = address {
        let _ = std::fs::remove_file(p);
    }
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir(dir);
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// The pid of a process that has exited and been reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn a_dead_pools_directory_is_swept_at_the_next_start() {
        let parent =
            std::env::temp_dir().join(format!("potential-sweep-test-{}", random_tag().unwrap()));
        std::fs::create_dir(&parent).unwrap();
        let stale = parent.join(dir_name(dead_pid(), &random_tag().unwrap()));
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join(SOCKET_FILE), b"").unwrap();
        let live = parent.join(dir_name(std::process::id(), &random_tag().unwrap()));
        std::fs::create_dir(&live).unwrap();
        let unrelated = parent.join("potential-notes");
        std::fs::create_dir(&unrelated).unwrap();

        let (address, dir) = fresh_address(&SocketLocation::Directory(parent.clone())).unwrap();
        let dir = dir.unwrap();
        assert!(!stale.exists(), "the dead pool's directory is left");
        assert!(live.exists() && unrelated.exists() && dir.exists());
        assert_eq!(
            owner_of(dir.file_name().unwrap().to_str().unwrap()),
            Some(std::process::id())
        );

        remove_private_dir(&address, Some(&dir));
        for d in [&live, &unrelated, &parent] {
            std::fs::remove_dir(d).unwrap();
        }
    }

    #[test]
    fn a_link_named_like_a_dead_pools_directory_is_not_followed() {
        let root =
            std::env::temp_dir().join(format!("potential-link-test-{}", random_tag().unwrap()));
        let (parent, target) = (root.join("parent"), root.join("target"));
        std::fs::create_dir_all(&parent).unwrap();
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join(SOCKET_FILE), b"precious").unwrap();
        let planted = parent.join(dir_name(dead_pid(), &random_tag().unwrap()));
        std::os::unix::fs::symlink(&target, &planted).unwrap();

        let (address, dir) = fresh_address(&SocketLocation::Directory(parent.clone())).unwrap();
        assert_eq!(
            std::fs::read(target.join(SOCKET_FILE)).unwrap(),
            b"precious",
            "the sweep followed the link"
        );
        assert!(
            std::fs::symlink_metadata(&planted).is_ok(),
            "the link stays"
        );

        remove_private_dir(&address, dir.as_deref());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
