//! An interpreter of the ruleset subset for one outgoing TCP packet.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use jiff::Timestamp;

use super::{Chain, Expr, Field, Match, Ruleset, Value};
use crate::schedule::{DAY_NAMES, utc_day_and_second};

/// TCP flag bits.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// One locally generated TCP packet on the output hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Destination address.
    pub daddr: IpAddr,
    /// Destination port.
    pub dport: u16,
    /// The sending socket's uid (`None`: no full socket, e.g. a kernel reset).
    pub skuid: Option<u32>,
    /// The sending socket's gid (the process's fsgid).
    pub skgid: Option<u32>,
    /// TCP flags.
    pub flags: u8,
    /// When the packet is sent.
    pub time: Timestamp,
}

/// What the table does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Action {
    /// Passes (this table does not stop it).
    Accept,
    /// Dropped silently.
    Drop,
    /// Rejected with a TCP reset.
    Reject,
}

/// The table's verdict and what it logged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Outcome {
    /// Verdict.
    pub action: Action,
    /// Log lines written: (prefix, skuid logged).
    pub logged: Vec<(String, bool)>,
    /// Rules looked at: the per-packet cost.
    pub rules_traversed: usize,
}

#[derive(Debug)]
enum Flow {
    Continue,
    Verdict(Action),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum V {
    Num(u64),
    Addr(IpAddr),
}

impl Ruleset {
    /// Runs `pkt` through every base chain on the output hook, in priority order.
    ///
    /// Builds a throwaway index; to evaluate many packets against one large
    /// ruleset, keep an [`Evaluator`].
    pub fn evaluate(&self, pkt: &Packet) -> Outcome {
        Evaluator::new(self).evaluate(pkt)
    }
}

/// A ruleset with its exact-match sets hashed, for many evaluations (verify's
/// access matrix over 10,000 users).
#[derive(Debug)]
pub struct Evaluator<'a> {
    rs: &'a Ruleset,
    exact: HashMap<&'a str, HashSet<Vec<V>>>,
}

impl<'a> Evaluator<'a> {
    /// Indexes `rs`.
    #[must_use]
    pub fn new(rs: &'a Ruleset) -> Self {
        let mut exact = HashMap::new();
        for set in rs.sets.iter().filter(|s| !s.interval) {
            // Elements are typed by the set's key, not by a rule's fields, so
            // symbols cannot occur here; a set we cannot index stays linear.
            let keys: Option<HashSet<Vec<V>>> = set
                .elements
                .iter()
                .map(|e| {
                    e.iter()
                        .map(|v| match v {
                            Value::Num(n) => Some(V::Num(*n)),
                            Value::Addr(a) => Some(V::Addr(*a)),
                            _ => None,
                        })
                        .collect()
                })
                .collect();
            if let Some(k) = keys {
                exact.insert(set.name.as_str(), k);
            }
        }
        Self { rs, exact }
    }

    /// See [`Ruleset::evaluate`].
    pub fn evaluate(&self, pkt: &Packet) -> Outcome {
        let mut out = Outcome {
            action: Action::Accept,
            logged: Vec::new(),
            rules_traversed: 0,
        };
        let mut bases: Vec<&Chain> = self
            .rs
            .chains
            .iter()
            .filter(|c| c.hook.as_ref().is_some_and(|h| h.hook == "output"))
            .collect();
        bases.sort_by_key(|c| c.hook.as_ref().map_or(0, |h| h.prio));
        for c in bases {
            let action = match self.run(c, pkt, &mut out, 0) {
                Flow::Verdict(a) => a,
                Flow::Continue => {
                    if c.hook.as_ref().is_some_and(|h| h.accept) {
                        Action::Accept
                    } else {
                        Action::Drop
                    }
                }
            };
            if action != Action::Accept {
                out.action = action;
                return out;
            }
        }
        out
    }

    fn run(&self, chain: &Chain, pkt: &Packet, out: &mut Outcome, depth: usize) -> Flow {
        if depth > 16 {
            // nft refuses loops when loading; a runaway here means a broken listing.
            return Flow::Verdict(Action::Drop);
        }
        'rules: for rule in &chain.rules {
            out.rules_traversed += 1;
            for e in &rule.exprs {
                match e {
                    Expr::Match(m) => {
                        if !self.matches(m, pkt) {
                            continue 'rules;
                        }
                    }
                    Expr::Counter => {}
                    Expr::Log { prefix, skuid, .. } => out.logged.push((prefix.clone(), *skuid)),
                    Expr::Accept => return Flow::Verdict(Action::Accept),
                    Expr::Drop => return Flow::Verdict(Action::Drop),
                    Expr::RejectTcpReset => return Flow::Verdict(Action::Reject),
                    Expr::Return => return Flow::Continue,
                    Expr::Goto(c) | Expr::Jump(c) => {
                        let Some(target) = self.rs.chain(c) else {
                            return Flow::Verdict(Action::Drop);
                        };
                        let f = self.run(target, pkt, out, depth + 1);
                        // A goto never comes back here: the target's end returns
                        // to whoever jumped to us.
                        if matches!(e, Expr::Goto(_)) || matches!(f, Flow::Verdict(_)) {
                            return f;
                        }
                    }
                }
            }
        }
        Flow::Continue
    }

    fn field(f: &Field, pkt: &Packet) -> Option<V> {
        let (day, sec) = utc_day_and_second(pkt.time);
        Some(match f {
            Field::Skuid => V::Num(u64::from(pkt.skuid?)),
            Field::Skgid => V::Num(u64::from(pkt.skgid?)),
            Field::L4proto => V::Num(6),
            Field::Day => V::Num(u64::from(day)),
            Field::Hour => V::Num(u64::from(sec)),
            Field::Ip4Daddr => match pkt.daddr {
                IpAddr::V4(_) => V::Addr(pkt.daddr),
                IpAddr::V6(_) => return None,
            },
            Field::Ip6Daddr => match pkt.daddr {
                IpAddr::V6(_) => V::Addr(pkt.daddr),
                IpAddr::V4(_) => return None,
            },
            Field::TcpDport => V::Num(u64::from(pkt.dport)),
            Field::TcpFlags(mask) => {
                let m = mask.iter().map(|s| flag_bits(s)).fold(0u8, |a, b| a | b);
                V::Num(u64::from(pkt.flags & m))
            }
        })
    }

    fn matches(&self, m: &Match, pkt: &Packet) -> bool {
        let mut vals = Vec::with_capacity(m.left.len());
        for f in &m.left {
            match Self::field(f, pkt) {
                Some(v) => vals.push(v),
                // A missing field (no socket, wrong family) ends the rule in the
                // kernel whatever the operator.
                None => return false,
            }
        }
        let hit = match &m.right {
            Value::SetRef(name) if self.exact.contains_key(name.as_str()) => {
                self.exact[name.as_str()].contains(&vals)
            }
            Value::SetRef(name) => self.rs.set(name).is_some_and(|s| {
                s.elements.iter().any(|e| {
                    e.len() == vals.len()
                        && e.iter()
                            .zip(&m.left)
                            .zip(&vals)
                            .all(|((c, f), v)| value_has(c, f, *v))
                })
            }),
            other => m.left.len() == 1 && value_has(other, &m.left[0], vals[0]),
        };
        hit == m.equal
    }
}

fn flag_bits(s: &str) -> u8 {
    match s {
        "fin" => tcp_flags::FIN,
        "syn" => tcp_flags::SYN,
        "rst" => tcp_flags::RST,
        "psh" => tcp_flags::PSH,
        "ack" => tcp_flags::ACK,
        _ => 0,
    }
}

/// The number a constant stands for in the context of field `f`.
fn constant(c: &Value, f: &Field) -> Option<V> {
    Some(match c {
        Value::Num(n) => V::Num(*n),
        Value::Addr(a) => V::Addr(*a),
        Value::Sym(s) => match f {
            Field::L4proto => V::Num(match s.as_str() {
                "tcp" => 6,
                "udp" => 17,
                _ => return None,
            }),
            Field::Day => V::Num(DAY_NAMES.iter().position(|d| d == s)? as u64),
            Field::Hour => V::Num(u64::from(parse_hour(s)?)),
            Field::TcpFlags(_) => V::Num(u64::from(
                s.split(['|', ','])
                    .map(|x| flag_bits(x.trim()))
                    .fold(0u8, |a, b| a | b),
            )),
            _ => V::Num(s.parse().ok()?),
        },
        Value::SetRef(_) | Value::Range(..) => return None,
    })
}

fn value_has(c: &Value, f: &Field, v: V) -> bool {
    match c {
        Value::Range(a, b) => match (constant(a, f), constant(b, f), v) {
            (Some(V::Num(lo)), Some(V::Num(hi)), V::Num(x)) => lo <= x && x <= hi,
            (Some(V::Addr(lo)), Some(V::Addr(hi)), V::Addr(x)) => lo <= x && x <= hi,
            _ => false,
        },
        _ => constant(c, f) == Some(v),
    }
}

/// `HH:MM` or `HH:MM:SS` to seconds after midnight.
fn parse_hour(s: &str) -> Option<u32> {
    let mut it = s.split(':');
    let h: u32 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let sec: u32 = it.next().map_or(Some(0), |x| x.parse().ok())?;
    (it.next().is_none() && h < 24 && m < 60 && sec < 60).then_some(h * 3600 + m * 60 + sec)
}
