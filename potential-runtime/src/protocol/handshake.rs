//! The worker's hello and the pool's secret.
//!
//! A worker's first frame (id 0) carries:
//!
//! ```text
//! magic "PTRW" (4) | protocol version: u16 LE (2) | secret (32) | spawn ticket: u64 LE (8)
//! ```
//!
//! The version is [`wire::VERSION`](potential_core::wire::VERSION), which
//! lives beside the payloads it versions.
//!
//! The pool reads it with a frame limit of exactly its size and a
//! deadline, checks the magic, then the version (so a peer of another
//! version learns nothing about the secret and is told apart in the log),
//! then the secret in constant time, then that the ticket is one it handed
//! out and has not yet seen. Anything else is refused and logged, and the
//! connection is closed; the pool keeps serving.
//!
//! The secret is 32 bytes from the operating system's generator, one per
//! pool, handed to each worker with its ticket through the worker's
//! standard input, a pipe written once (never in the environment, which
//! the same user can read in `/proc/<pid>/environ` for the worker's life,
//! nor on the command line, which every user can read). Tickets are random
//! too: a peer cannot guess the next one.

use std::fmt;

use potential_core::wire::VERSION;

use super::frame::{Frame, encode_frame};
use super::message::INIT_ID;

/// The first bytes of a hello.
pub const MAGIC: [u8; 4] = *b"PTRW";

/// The length of the secret in bytes.
pub const SECRET_LEN: usize = 32;

/// The length of a hello's payload.
pub const HELLO_LEN: usize = 4 + 2 + SECRET_LEN + 8;

/// The frame limit while the pool waits for a hello: the hello's id and payload.
pub const HELLO_FRAME_LEN: usize = 8 + HELLO_LEN;

/// A pool's secret. Its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; SECRET_LEN]);

impl Secret {
    /// A fresh secret from the operating system's random source.
    pub fn random() -> std::io::Result<Secret> {
        let mut bytes = [0; SECRET_LEN];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        Ok(Secret(bytes))
    }

    /// The secret's bytes.
    pub(crate) fn bytes(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }

    /// A secret from its bytes.
    pub const fn from_bytes(bytes: [u8; SECRET_LEN]) -> Secret {
        Secret(bytes)
    }

    /// The secret as lowercase hex, for the environment.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses [`to_hex`](Self::to_hex)'s form.
    pub fn from_hex(hex: &str) -> Option<Secret> {
        let hex = hex.as_bytes();
        if hex.len() != 2 * SECRET_LEN {
            return None;
        }
        let mut bytes = [0; SECRET_LEN];
        for (b, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            *b = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(Secret(bytes))
    }

    /// Compares in time independent of where the bytes differ.
    pub fn matches(&self, other: &[u8]) -> bool {
        other.len() == SECRET_LEN
            && self
                .0
                .iter()
                .zip(other)
                .fold(0, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A worker's hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The protocol version the worker speaks.
    pub version: u16,
    /// The secret it presents.
    pub secret: [u8; SECRET_LEN],
    /// The ticket the pool gave it when it spawned it.
    pub ticket: u64,
}

impl Hello {
    /// The hello of a worker of this version.
    pub fn new(secret: &Secret, ticket: u64) -> Hello {
        Hello {
            version: VERSION,
            secret: secret.0,
            ticket,
        }
    }

    /// The hello as a whole frame.
    pub fn to_frame(&self) -> Vec<u8> {
        let mut payload = Vec::with_capacity(HELLO_LEN);
        payload.extend_from_slice(&MAGIC);
        payload.extend_from_slice(&self.version.to_le_bytes());
        payload.extend_from_slice(&self.secret);
        payload.extend_from_slice(&self.ticket.to_le_bytes());
        encode_frame(INIT_ID, &payload).expect("a hello is a few dozen bytes")
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The first frame's length field was not that of a hello, or was garbage.
    BadFrame(String),
    /// The first frame was not a hello.
    BadMagic,
    /// The peer speaks another protocol version.
    WrongVersion {
        /// The version it sent.
        got: u16,
    },
    /// The secret did not match.
    WrongSecret,
    /// The ticket was not handed out, or was already used.
    UnknownTicket {
        /// The ticket it sent.
        ticket: u64,
    },
    /// No hello arrived before the deadline, or the peer hung up first.
    NoHello(String),
    /// The peer runs as another user (its uid from the socket on Unix,
    /// `SO_PEERCRED` on Linux, checked before a byte of it is read).
    WrongUser {
        /// The peer's user id.
        uid: u32,
    },
    /// Too many connections were waiting to say hello already.
    Busy {
        /// The cap on connections waiting for their hello.
        pending: usize,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::BadFrame(e) => write!(f, "bad first frame: {e}"),
            Refusal::BadMagic => f.write_str("not a worker hello (bad magic)"),
            Refusal::WrongVersion { got } => {
                write!(f, "protocol version {got}, expected {VERSION}")
            }
            Refusal::WrongSecret => f.write_str("wrong secret"),
            Refusal::UnknownTicket { ticket } => write!(f, "unknown spawn ticket {ticket}"),
            Refusal::NoHello(why) => write!(f, "no hello: {why}"),
            Refusal::WrongUser { uid } => write!(f, "a peer of another user (uid {uid})"),
            Refusal::Busy { pending } => {
                write!(
                    f,
                    "{pending} connections were waiting for their hello already"
                )
            }
        }
    }
}

/// Checks a hello frame against the pool's secret; gives its ticket.
pub fn check_hello(frame: Frame<'_>, secret: &Secret) -> Result<u64, Refusal> {
    let p = frame.payload;
    if frame.id != 0 || p.len() != HELLO_LEN {
        return Err(Refusal::BadFrame(format!(
            "id {} with {} bytes, expected id 0 with {HELLO_LEN}",
            frame.id,
            p.len()
        )));
    }
    if p[..4] != MAGIC {
        return Err(Refusal::BadMagic);
    }
    let version = u16::from_le_bytes([p[4], p[5]]);
    if version != VERSION {
        return Err(Refusal::WrongVersion { got: version });
    }
    if !secret.matches(&p[6..6 + SECRET_LEN]) {
        return Err(Refusal::WrongSecret);
    }
    Ok(u64::from_le_bytes(
        p[6 + SECRET_LEN..].try_into().expect("8 bytes"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::FrameDecoder;

    fn check(bytes: &[u8], secret: &Secret) -> Result<u64, Refusal> {
        let mut d = FrameDecoder::new(HELLO_FRAME_LEN);
        d.push(bytes);
        match d.next_frame() {
            Ok(Some(f)) => check_hello(f, secret),
            Ok(None) => Err(Refusal::NoHello("short".into())),
            Err(e) => Err(Refusal::BadFrame(e.to_string())),
        }
    }

    #[test]
    fn a_good_hello_gives_its_ticket() {
        let s = Secret::random().unwrap();
        assert_eq!(check(&Hello::new(&s, 42).to_frame(), &s), Ok(42));
        assert_eq!(Secret::from_hex(&s.to_hex()), Some(s.clone()));
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }

    #[test]
    fn every_bad_hello_is_refused_with_its_reason() {
        let s = Secret::random().unwrap();
        let other = Secret::random().unwrap();
        assert_eq!(
            check(&Hello::new(&other, 1).to_frame(), &s),
            Err(Refusal::WrongSecret)
        );
        let mut old = Hello::new(&s, 1);
        old.version = 99;
        assert_eq!(
            check(&old.to_frame(), &s),
            Err(Refusal::WrongVersion { got: 99 })
        );
        let mut bad = Hello::new(&s, 1).to_frame();
        bad[12] = b'X';
        assert_eq!(check(&bad, &s), Err(Refusal::BadMagic));
        assert!(matches!(
            check(&encode_frame(0, b"short").unwrap(), &s),
            Err(Refusal::BadFrame(_))
        ));
        assert!(matches!(check(&[0xff; 64], &s), Err(Refusal::BadFrame(_))));
        assert_eq!(Secret::from_hex("zz"), None);
        assert_eq!(Secret::from_hex(&"g".repeat(64)), None);
    }
}
