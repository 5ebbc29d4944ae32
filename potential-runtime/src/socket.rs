//! Where a pool listens: an unguessable local-socket name.

use std::io;
use std::path::{Path, PathBuf};

use interprocess::local_socket::{
    GenericFilePath, GenericNamespaced, Name, NameType, ToFsName, ToNsName,
};

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

fn private_dir(parent: &Path, tag: &str) -> io::Result<(SocketAddress, Option<PathBuf>)> {
    let dir = parent.join(format!("potential-{tag}"));
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    // `create` (not `create_all`) fails if the path exists: nobody can
    // plant the directory before us.
    builder.create(&dir)?;
    Ok((SocketAddress::Path(dir.join("pool.sock")), Some(dir)))
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
