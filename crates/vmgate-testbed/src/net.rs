//! Network namespaces, and a test host behind a veth pair with listeners on chosen ports.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use nix::sched::{CloneFlags, setns};

use crate::{run, run_ok, unique_name};

/// Lock files that hand out the /24 numbers of live test hosts.
const SLOT_DIR: &str = "/run/vmgate-testbed";

/// A network namespace of the test's own (`ip netns add`), with `lo` up; deleted on drop.
#[derive(Debug)]
pub struct TestNetns {
    name: String,
}

impl TestNetns {
    /// Creates `vmgtns<pid>x<n>`.
    pub fn create() -> Self {
        let name = unique_name("ns");
        run_ok(&["ip", "netns", "add", &name]);
        let ns = TestNetns { name };
        run_ok(&["ip", "-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name, for `ip netns exec` and [`vmgate_system::nft::NftTable::in_netns`].
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let out = run(&["ip", "netns", "delete", &self.name]);
        if !out.status.success() {
            eprintln!(
                "warning: ip netns delete {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
}

/// Builds a [`TestHost`].
#[derive(Debug, Default)]
pub struct TestHostBuilder {
    ports: Vec<u16>,
    client_netns: Option<String>,
}

impl TestHostBuilder {
    /// Listens on these TCP ports (IPv4 and IPv6) inside the host's namespace.
    #[must_use]
    pub fn ports(mut self, ports: &[u16]) -> Self {
        self.ports.extend_from_slice(ports);
        self
    }

    /// Puts the client end of the veth into `client` instead of the root namespace, so
    /// that the nft table under test can live there too. `client` must outlive the host.
    #[must_use]
    pub fn client_netns(mut self, client: &TestNetns) -> Self {
        self.client_netns = Some(client.name().to_owned());
        self
    }

    /// Creates the namespace, the veth pair, the addresses and the listeners.
    pub fn start(self) -> TestHost {
        let (n, slot) = allocate_slot();
        let tag = std::process::id() % 100_000;
        let mut host = TestHost {
            n,
            host_ns: TestNetns::create(),
            client_ns: self.client_netns,
            client_if: format!("vg{n}c{tag}"),
            host_if: format!("vg{n}h{tag}"),
            listeners: BTreeMap::new(),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            _slot: slot,
        };
        // From here on a panic drops `host`, which removes whatever was created.
        host.wire();
        for &port in &self.ports {
            host.listen(port);
        }
        host
    }
}

/// A host in a network namespace of its own, reachable from the client side (the root
/// namespace, or a client namespace) at 10.200.N.2 and fd00:10:200:N::2; the client side
/// has .1 and ::1. Listeners accept and echo. Everything is removed on drop.
#[derive(Debug)]
pub struct TestHost {
    n: u8,
    host_ns: TestNetns,
    client_ns: Option<String>,
    client_if: String,
    host_if: String,
    listeners: BTreeMap<u16, Arc<AtomicUsize>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    _slot: Flock<File>,
}

impl TestHost {
    /// A host listening on `ports`, its client side in the root namespace.
    pub fn start(ports: &[u16]) -> Self {
        Self::builder().ports(ports).start()
    }

    /// A builder, for a client namespace.
    pub fn builder() -> TestHostBuilder {
        TestHostBuilder::default()
    }

    fn ip_client(&self, args: &[&str]) {
        let mut argv = vec!["ip"];
        if let Some(ns) = &self.client_ns {
            argv.extend(["-n", ns.as_str()]);
        }
        argv.extend_from_slice(args);
        run_ok(&argv);
    }

    fn ip_host(&self, args: &[&str]) {
        let mut argv = vec!["ip", "-n", self.host_ns.name()];
        argv.extend_from_slice(args);
        run_ok(&argv);
    }

    fn wire(&self) {
        let (c, h) = (self.client_if.as_str(), self.host_if.as_str());
        run_ok(&["ip", "link", "add", c, "type", "veth", "peer", "name", h]);
        run_ok(&["ip", "link", "set", h, "netns", self.host_ns.name()]);
        if let Some(ns) = &self.client_ns {
            run_ok(&["ip", "link", "set", c, "netns", ns]);
        }
        let n = self.n;
        let (v6c, v6h) = (self.client_v6(), self.v6());
        // `nodad`: the addresses are usable at once instead of after duplicate detection.
        self.ip_client(&["addr", "add", &format!("10.200.{n}.1/24"), "dev", c]);
        self.ip_client(&["addr", "add", &format!("{v6c}/64"), "dev", c, "nodad"]);
        self.ip_client(&["link", "set", c, "up"]);
        self.ip_host(&["addr", "add", &format!("10.200.{n}.2/24"), "dev", h]);
        self.ip_host(&["addr", "add", &format!("{v6h}/64"), "dev", h, "nodad"]);
        self.ip_host(&["link", "set", h, "up"]);
    }

    /// Listens on `port` (one dual-stack socket: a fresh namespace has bindv6only=0),
    /// echoing what each connection sends until it closes or the host is dropped.
    pub fn listen(&mut self, port: u16) {
        let ns_path = format!("/run/netns/{}", self.host_ns.name());
        let ns_file = File::open(&ns_path).unwrap_or_else(|e| panic!("open {ns_path}: {e}"));
        // setns changes only the calling thread; the socket keeps the namespace it was
        // created in, so one short-lived thread is enough to bind it there.
        let listener = std::thread::spawn(move || -> std::io::Result<TcpListener> {
            setns(&ns_file, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            TcpListener::bind((Ipv6Addr::UNSPECIFIED, port))
        })
        .join()
        .expect("binding thread")
        .unwrap_or_else(|e| panic!("listen on port {port} in {}: {e}", self.host_ns.name()));
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let accepted = Arc::new(AtomicUsize::new(0));
        self.listeners.insert(port, accepted.clone());
        let stop = self.stop.clone();
        self.threads.push(std::thread::spawn(move || {
            accept_loop(&listener, &accepted, &stop)
        }));
    }

    /// N's decimal digits read as hex, so that 10.200.198.0/24 pairs with
    /// fd00:10:200:198::/64 as a reader expects.
    fn v6_group(&self) -> u16 {
        u16::from_str_radix(&self.n.to_string(), 16).expect("decimal digits are hex digits")
    }

    /// `ip netns exec HOST ARGV`: a command to run inside the host's namespace (a Spice
    /// server, say); start it with [`crate::Spawned`] so it is killed with the test.
    pub fn command(&self, argv: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", self.host_ns.name()]).args(argv);
        cmd
    }

    /// The /24 (and /64) number N of this host.
    pub fn n(&self) -> u8 {
        self.n
    }

    /// The host's IPv4 address, 10.200.N.2.
    pub fn v4(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 200, self.n, 2))
    }

    /// The host's IPv6 address, fd00:10:200:N::2.
    pub fn v6(&self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::new(
            0xfd00,
            0x10,
            0x200,
            self.v6_group(),
            0,
            0,
            0,
            2,
        ))
    }

    /// Both host addresses, IPv4 first.
    pub fn addrs(&self) -> [IpAddr; 2] {
        [self.v4(), self.v6()]
    }

    /// The client side's IPv4 address, 10.200.N.1.
    pub fn client_v4(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 200, self.n, 1))
    }

    /// The client side's IPv6 address, fd00:10:200:N::1.
    pub fn client_v6(&self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::new(
            0xfd00,
            0x10,
            0x200,
            self.v6_group(),
            0,
            0,
            0,
            1,
        ))
    }

    /// The host's namespace (where the listeners are).
    pub fn host_netns(&self) -> &str {
        self.host_ns.name()
    }

    /// The client namespace, or `None` when the client side is the root namespace.
    pub fn client_netns(&self) -> Option<&str> {
        self.client_ns.as_deref()
    }

    /// The client side's interface name.
    pub fn client_if(&self) -> &str {
        &self.client_if
    }

    /// How many connections the listener on `port` has accepted so far.
    pub fn accepted(&self, port: u16) -> usize {
        self.listeners
            .get(&port)
            .unwrap_or_else(|| panic!("no listener on port {port}"))
            .load(Ordering::SeqCst)
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // Deleting one end of a veth deletes both; the namespace goes when `host_ns` drops.
        let mut argv = vec!["ip"];
        if let Some(ns) = &self.client_ns {
            argv.extend(["-n", ns.as_str()]);
        }
        argv.extend(["link", "delete", self.client_if.as_str()]);
        let _ = run(&argv);
    }
}

fn accept_loop(listener: &TcpListener, accepted: &AtomicUsize, stop: &Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                accepted.fetch_add(1, Ordering::SeqCst);
                let stop = stop.clone();
                std::thread::spawn(move || echo(stream, &stop));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn echo(mut stream: TcpStream, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// A /24 number no live test host uses: each number has a lock file held for the host's
/// lifetime (released by the kernel even when the process is killed), and a number whose
/// network is already on an interface of the root namespace is skipped.
fn allocate_slot() -> (u8, Flock<File>) {
    std::fs::create_dir_all(SLOT_DIR).unwrap_or_else(|e| panic!("create {SLOT_DIR}: {e}"));
    let start = std::process::id() % 250;
    for i in 0..250 {
        let n = u8::try_from(1 + (start + i) % 250).expect("1..=250");
        let path = format!("{SLOT_DIR}/slot-{n}.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
        let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
            continue;
        };
        let used = run(&[
            "ip",
            "-o",
            "addr",
            "show",
            "to",
            &format!("10.200.{n}.0/24"),
        ]);
        if used.status.success() && used.stdout.is_empty() {
            return (n, lock);
        }
    }
    panic!("no free 10.200.N.0/24 for a test host (250 in use?)");
}
