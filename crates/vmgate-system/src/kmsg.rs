//! Our denials in the kernel log. nft's `log prefix "P" flags skuid` writes lines like
//!
//! ```text
//! P IN= OUT=veth0 SRC=10.200.1.1 DST=10.200.1.2 ... PROTO=TCP SPT=48072 DPT=5900 ... UID=1001 GID=100
//! ```
//!
//! We read them from `/dev/kmsg` (every record with its sequence number, so callers can
//! ask for what came after a point), or from `dmesg --raw` when `/dev/kmsg` cannot be
//! opened, and parse the fields that say who was refused where.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;

use crate::cmd::Cmd;
use crate::error::{Error, Result};

/// The device with the kernel's log records.
pub const KMSG: &str = "/dev/kmsg";

/// One kernel log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRecord {
    /// Sequence number (from `/dev/kmsg`; a line index with the `dmesg` fallback).
    pub seq: u64,
    /// Microseconds since boot.
    pub timestamp_us: u64,
    /// The message text (first line only).
    pub message: String,
}

/// One refused connection, parsed from a log line with our prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Sequence number of the record.
    pub seq: u64,
    /// Microseconds since boot.
    pub timestamp_us: u64,
    /// The socket owner's uid (`flags skuid`); absent for packets without a full socket.
    pub uid: Option<u32>,
    /// The socket owner's gid (`flags skuid`).
    pub gid: Option<u32>,
    /// Source address.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport protocol as nft names it (`TCP`, `UDP`, ...).
    pub proto: Option<String>,
    /// Source port.
    pub sport: Option<u16>,
    /// Destination port.
    pub dport: Option<u16>,
    /// Outgoing interface.
    pub out_if: Option<String>,
}

/// Every record currently in the kernel's ring buffer.
pub fn read_records() -> Result<Vec<KernelRecord>> {
    match read_kmsg() {
        Ok(r) => Ok(r),
        Err(Error::Io { .. }) => read_dmesg(),
        Err(e) => Err(e),
    }
}

fn read_kmsg() -> Result<Vec<KernelRecord>> {
    let mut dev = OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(KMSG)
        .map_err(|e| Error::io("open", KMSG, e))?;
    let mut records = Vec::new();
    // One read returns one record; records are at most about 8 KiB.
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match dev.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if let Some(r) = parse_kmsg_record(&String::from_utf8_lossy(&buf[..n])) {
                    records.push(r);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            // EPIPE: the records we were about to read were overwritten; go on.
            Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("read", KMSG, e)),
        }
    }
    Ok(records)
}

fn read_dmesg() -> Result<Vec<KernelRecord>> {
    let out = Cmd::new("dmesg").arg("--raw").run(None)?;
    Ok(out
        .lines()
        .enumerate()
        .map(|(i, line)| parse_dmesg_line(i as u64, line))
        .collect())
}

/// `PRI,SEQ,TS,FLAGS[,...];MESSAGE\n[ KEY=VALUE\n]...` (Documentation/ABI/testing/dev-kmsg).
pub fn parse_kmsg_record(record: &str) -> Option<KernelRecord> {
    let (head, rest) = record.split_once(';')?;
    let mut fields = head.split(',');
    let _pri = fields.next()?;
    let seq = fields.next()?.parse().ok()?;
    let timestamp_us = fields.next()?.parse().ok()?;
    let message = rest.lines().next().unwrap_or("").to_owned();
    Some(KernelRecord {
        seq,
        timestamp_us,
        message,
    })
}

/// `<PRI>[  SECONDS.MICROS] MESSAGE` as `dmesg --raw` prints it.
fn parse_dmesg_line(seq: u64, line: &str) -> KernelRecord {
    let mut rest = line;
    if rest.starts_with('<') {
        if let Some(end) = rest.find('>') {
            rest = &rest[end + 1..];
        }
    }
    let mut timestamp_us = 0;
    if let Some(stripped) = rest.strip_prefix('[') {
        if let Some((ts, msg)) = stripped.split_once(']') {
            if let Some((s, us)) = ts.trim().split_once('.') {
                timestamp_us =
                    s.parse::<u64>().unwrap_or(0) * 1_000_000 + us.parse::<u64>().unwrap_or(0);
            }
            rest = msg.strip_prefix(' ').unwrap_or(msg);
        }
    }
    KernelRecord {
        seq,
        timestamp_us,
        message: rest.to_owned(),
    }
}

/// Parses a log message that starts with `prefix`; `None` for other messages or when
/// the line has no `DST=`.
pub fn parse_denial(record: &KernelRecord, prefix: &str) -> Option<Denial> {
    let body = record.message.strip_prefix(prefix)?;
    let mut d = Denial {
        seq: record.seq,
        timestamp_us: record.timestamp_us,
        uid: None,
        gid: None,
        src: None,
        dst: IpAddr::from([0, 0, 0, 0]),
        proto: None,
        sport: None,
        dport: None,
        out_if: None,
    };
    let mut dst = None;
    for token in body.split_whitespace() {
        let Some((key, value)) = token.split_once('=') else {
            continue;
        };
        match key {
            "SRC" => d.src = value.parse().ok(),
            "DST" => dst = value.parse().ok(),
            "PROTO" => d.proto = Some(value.to_owned()),
            "SPT" => d.sport = value.parse().ok(),
            "DPT" => d.dport = value.parse().ok(),
            "UID" => d.uid = value.parse().ok(),
            "GID" => d.gid = value.parse().ok(),
            "OUT" if !value.is_empty() => d.out_if = Some(value.to_owned()),
            _ => {}
        }
    }
    d.dst = dst?;
    Some(d)
}

/// Every denial with `prefix` now in the kernel log, oldest first.
pub fn denials(prefix: &str) -> Result<Vec<Denial>> {
    Ok(read_records()?
        .iter()
        .filter_map(|r| parse_denial(r, prefix))
        .collect())
}

/// Denials logged from now on, as they arrive (for `vmgate log --follow`). Each `next`
/// blocks until the kernel logs a line with the prefix.
#[derive(Debug)]
pub struct Follow {
    dev: std::fs::File,
    prefix: String,
    buf: Vec<u8>,
}

/// Starts following the kernel log at its current end.
pub fn follow(prefix: &str) -> Result<Follow> {
    use std::io::{Seek, SeekFrom};
    let mut dev = std::fs::File::open(KMSG).map_err(|e| Error::io("open", KMSG, e))?;
    // On /dev/kmsg, SEEK_END moves past the last record: only new records are read.
    dev.seek(SeekFrom::End(0))
        .map_err(|e| Error::io("seek to the end of", KMSG, e))?;
    Ok(Follow {
        dev,
        prefix: prefix.to_owned(),
        buf: vec![0u8; 16 * 1024],
    })
}

impl Iterator for Follow {
    type Item = Result<Denial>;

    fn next(&mut self) -> Option<Result<Denial>> {
        loop {
            match self.dev.read(&mut self.buf) {
                Ok(0) => return None,
                Ok(n) => {
                    let text = String::from_utf8_lossy(&self.buf[..n]);
                    if let Some(d) =
                        parse_kmsg_record(&text).and_then(|r| parse_denial(&r, &self.prefix))
                    {
                        return Some(Ok(d));
                    }
                }
                Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Some(Err(Error::io("read", KMSG, e))),
            }
        }
    }
}

/// The highest sequence number now in the log (to read only later denials).
pub fn last_seq() -> Result<u64> {
    Ok(read_records()?.iter().map(|r| r.seq).max().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &str = "4,3301,629389690,-;vmgate: IN= OUT=vgx1r SRC=10.200.250.1 DST=10.200.250.2 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=46676 DF PROTO=TCP SPT=48072 DPT=5900 WINDOW=64240 RES=0x00 SYN URGP=0 UID=1001 GID=100 \n SUBSYSTEM=net\n";

    #[test]
    fn kmsg_record_with_uid_parses() {
        let r = parse_kmsg_record(V4).unwrap();
        assert_eq!((r.seq, r.timestamp_us), (3301, 629_389_690));
        let d = parse_denial(&r, "vmgate: ").unwrap();
        assert_eq!(d.uid, Some(1001));
        assert_eq!(d.gid, Some(100));
        assert_eq!(d.dst, "10.200.250.2".parse::<IpAddr>().unwrap());
        assert_eq!(d.src, Some("10.200.250.1".parse().unwrap()));
        assert_eq!((d.sport, d.dport), (Some(48072), Some(5900)));
        assert_eq!(d.proto.as_deref(), Some("TCP"));
        assert_eq!(d.out_if.as_deref(), Some("vgx1r"));
        assert!(parse_denial(&r, "other: ").is_none());
    }

    #[test]
    fn ipv6_and_socketless_lines_parse() {
        let r = KernelRecord {
            seq: 1,
            timestamp_us: 2,
            message: "vmgate: IN= OUT=v SRC=fd00:10:200:5::1 DST=fd00:10:200:5::2 LEN=80 PROTO=TCP SPT=1 DPT=5901 ACK URGP=0".into(),
        };
        let d = parse_denial(&r, "vmgate: ").unwrap();
        assert_eq!(d.dst, "fd00:10:200:5::2".parse::<IpAddr>().unwrap());
        assert_eq!(d.uid, None);
        assert_eq!(d.dport, Some(5901));
    }

    #[test]
    fn dmesg_raw_lines_parse() {
        let r = parse_dmesg_line(7, "<4>[  629.389690] vmgate: IN= DST=10.0.0.1 DPT=1 UID=5");
        assert_eq!(r.timestamp_us, 629_389_690);
        assert_eq!(parse_denial(&r, "vmgate: ").unwrap().uid, Some(5));
    }
}
