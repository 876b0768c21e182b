//! The nftables ruleset as data: the subset of nft that vmgate emits.
//!
//! One IR, three faces: [`Ruleset::to_text`] (what `nft -f` loads),
//! [`Ruleset::to_json`] (the shape `nft -j list table` prints) and
//! [`Ruleset::from_json`] (reads that shape back, from our JSON or from the
//! live kernel). [`Ruleset::evaluate`] interprets it for one packet; the
//! property tests hold it against [`crate::decide()`], and `vmgate verify` runs
//! it on the live table.
//!
//! **Invariant**: every ruleset is loaded and listed with `TZ=UTC`, so
//! `meta hour` strings are UTC both ways.

mod diff;
mod interp;
mod json;
mod text;

pub use diff::diff;
pub use interp::{Action, Evaluator, Outcome, Packet, tcp_flags};
pub use json::JsonError;

use std::net::IpAddr;

/// A table of family `inet`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ruleset {
    /// Table name (`vmgate`; tests use a unique one).
    pub table: String,
    /// Named sets, in order.
    pub sets: Vec<Set>,
    /// Chains, in order.
    pub chains: Vec<Chain>,
}

/// The data types we key sets with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum DataType {
    /// `uid`.
    Uid,
    /// `gid`.
    Gid,
    /// `ipv4_addr`.
    Ipv4Addr,
    /// `ipv6_addr`.
    Ipv6Addr,
    /// `inet_service`.
    InetService,
}

impl DataType {
    /// nft's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Uid => "uid",
            Self::Gid => "gid",
            Self::Ipv4Addr => "ipv4_addr",
            Self::Ipv6Addr => "ipv6_addr",
            Self::InetService => "inet_service",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        [
            Self::Uid,
            Self::Gid,
            Self::Ipv4Addr,
            Self::Ipv6Addr,
            Self::InetService,
        ]
        .into_iter()
        .find(|t| t.name() == s)
    }
}

/// A named set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Set {
    /// Name.
    pub name: String,
    /// Key type; more than one means a concatenation.
    pub types: Vec<DataType>,
    /// `flags interval`.
    pub interval: bool,
    /// Elements, one atom per key part.
    pub elements: Vec<Vec<Value>>,
}

/// A chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Chain {
    /// Name.
    pub name: String,
    /// Present for base chains.
    pub hook: Option<Hook>,
    /// Rules, in order.
    pub rules: Vec<Rule>,
}

/// A base chain's hook.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hook {
    /// Hook name: `output`.
    pub hook: String,
    /// Priority (`filter` = 0).
    pub prio: i32,
    /// Policy when the chain ends: true = accept.
    pub accept: bool,
}

/// A rule: statements evaluated left to right.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    /// Statements.
    pub exprs: Vec<Expr>,
    /// Comment.
    pub comment: Option<String>,
}

/// A statement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Expr {
    /// A match; the rule stops here when it fails.
    Match(Match),
    /// `accept`.
    Accept,
    /// `drop`.
    Drop,
    /// `return`.
    Return,
    /// `goto CHAIN`.
    Goto(String),
    /// `jump CHAIN`.
    Jump(String),
    /// `log prefix P level L [flags skuid]`.
    Log {
        /// Prefix.
        prefix: String,
        /// Level (`info`).
        level: String,
        /// Log the socket's uid.
        skuid: bool,
    },
    /// `reject with tcp reset`.
    RejectTcpReset,
    /// `counter` (statistics are ignored).
    Counter,
}

/// `left op right`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Match {
    /// One field, or a concatenation.
    pub left: Vec<Field>,
    /// `==` or `!=`.
    pub equal: bool,
    /// What it is compared with.
    pub right: Value,
}

/// A packet or socket field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Field {
    /// `meta skuid`.
    Skuid,
    /// `meta skgid`.
    Skgid,
    /// `meta l4proto`.
    L4proto,
    /// `meta day` (UTC weekday, 0 = Sunday).
    Day,
    /// `meta hour` (UTC seconds since midnight).
    Hour,
    /// `ip daddr`.
    Ip4Daddr,
    /// `ip6 daddr`.
    Ip6Daddr,
    /// `tcp dport`.
    TcpDport,
    /// `tcp flags & MASK`.
    TcpFlags(Vec<String>),
}

/// A constant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Value {
    /// A number (uid, gid, port).
    Num(u64),
    /// A symbol: `tcp`, `syn`, `Monday`, `07:00`.
    Sym(String),
    /// An address.
    Addr(IpAddr),
    /// `@set`.
    SetRef(String),
    /// `a-b`, inclusive.
    Range(Box<Value>, Box<Value>),
}

impl Ruleset {
    /// The chain called `name`.
    #[must_use]
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// The set called `name`.
    #[must_use]
    pub fn set(&self, name: &str) -> Option<&Set> {
        self.sets.iter().find(|s| s.name == name)
    }

    /// Total number of rules.
    #[must_use]
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }

    /// Total number of set elements.
    #[must_use]
    pub fn element_count(&self) -> usize {
        self.sets.iter().map(|s| s.elements.len()).sum()
    }
}
