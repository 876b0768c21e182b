//! Per-connection setup cost as the kernel sees it, for the benchmark: sockets are created
//! while the effective uid and gid are those of the user under test (the kernel records
//! them in the socket: `meta skuid`/`skgid`), then connected, timed, as root.

use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrStorage, connect, socket};
use nix::unistd::{Gid, Uid, setegid, seteuid};

/// What [`timed_connects`] measured.
#[derive(Debug, Clone, Default)]
pub struct ConnectTiming {
    /// Time of each successful `connect()` (SYN out to SYN-ACK in, nft included).
    pub connected: Vec<Duration>,
    /// Time of each refused `connect()`.
    pub refused: Vec<Duration>,
    /// Other errors, as text.
    pub errors: Vec<String>,
}

impl ConnectTiming {
    /// The median of the successful connects.
    pub fn median_connected(&self) -> Option<Duration> {
        let mut v = self.connected.clone();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    }
}

/// Opens `count` connections to `addr` from sockets owned by `uid`/`gid`, timing each
/// `connect()`.
///
/// **Process-wide:** it switches the effective uid and gid of the whole process around
/// each `socket()` call, so run it only where nothing else runs at the same time: a
/// benchmark binary, or a test binary with a single test. Must start as root; returns
/// with root's ids again.
pub fn timed_connects(uid: u32, gid: u32, addr: SocketAddr, count: usize) -> ConnectTiming {
    assert!(
        nix::unistd::geteuid().is_root(),
        "timed_connects must run as root"
    );
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let target = SockaddrStorage::from(addr);
    let mut out = ConnectTiming::default();
    for _ in 0..count {
        setegid(Gid::from_raw(gid)).expect("setegid");
        seteuid(Uid::from_raw(uid)).expect("seteuid");
        let sock = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None);
        seteuid(Uid::from_raw(0)).expect("back to euid 0");
        setegid(Gid::from_raw(0)).expect("back to egid 0");
        let sock = sock.expect("socket");
        let start = Instant::now();
        let result = connect(sock.as_raw_fd(), &target);
        let took = start.elapsed();
        match result {
            Ok(()) => out.connected.push(took),
            Err(nix::errno::Errno::ECONNREFUSED) => out.refused.push(took),
            Err(e) => out.errors.push(e.to_string()),
        }
        drop(TcpStream::from(sock));
    }
    out
}
