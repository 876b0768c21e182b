//! Policy to nftables: the grant sets and the chains around them.
//!
//! Shape (per packet, whatever the number of users):
//! `output` hook → guarded `address . port`? (one interval-set lookup) →
//! `check4`/`check6`: root exemption, one hashed lookup of
//! `skuid . skgid . daddr . dport` in the always-open grants, one rule per
//! distinct UTC window piece with its own hashed set, then `deny`: log a SYN,
//! reject with a TCP reset. Every packet of a guarded destination is checked,
//! not only the first, so a closing window cuts open sessions.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::nft::{Chain, DataType, Expr, Field, Hook, Match, Rule, Ruleset, Set, Value};
use crate::policy::Policy;
use crate::schedule::{DAY_NAMES, DAY_SHORT, DayPiece, hhmm};

/// Name of the always-open grant set for a family (`4` or `6`).
#[must_use]
pub fn grants_set(fam: u8) -> String {
    format!("grants{fam}")
}

fn window_set(p: &DayPiece, fam: u8) -> String {
    format!(
        "{}_{:04}_{:04}_{fam}",
        DAY_SHORT[p.day as usize],
        hhmm(p.start).replace(':', ""),
        hhmm(p.end).replace(':', "")
    )
    .replace("_0000_2400_", "_day_")
}

type Key = (u32, u32, IpAddr, u16);

/// Compiles the policy for a UTC offset (seconds east of UTC).
#[must_use]
pub fn compile(policy: &Policy, table: &str, offset_seconds: i64) -> Ruleset {
    let gid = policy.defaults.group.gid;
    let mut always: BTreeSet<Key> = BTreeSet::new();
    let mut windows: BTreeMap<DayPiece, BTreeSet<Key>> = BTreeMap::new();
    for c in &policy.consoles {
        let server = policy.server_of(c);
        for g in &c.grants {
            let pieces = if g.schedule.is_always() {
                None
            } else {
                Some(g.schedule.utc_pieces(offset_seconds))
            };
            for p in &g.principals {
                for &a in &server.addresses {
                    let key = (p.uid, gid, a, c.port);
                    match &pieces {
                        None => {
                            always.insert(key);
                        }
                        Some(ps) => {
                            for piece in ps {
                                windows.entry(*piece).or_default().insert(key);
                            }
                        }
                    }
                }
            }
        }
    }
    let grant_types = |fam: u8| {
        vec![
            DataType::Uid,
            DataType::Gid,
            if fam == 4 {
                DataType::Ipv4Addr
            } else {
                DataType::Ipv6Addr
            },
            DataType::InetService,
        ]
    };
    let elems = |keys: &BTreeSet<Key>, fam: u8| -> Vec<Vec<Value>> {
        keys.iter()
            .filter(|k| matches!((k.2, fam), (IpAddr::V4(_), 4) | (IpAddr::V6(_), 6)))
            .map(|&(u, g, a, p)| {
                vec![
                    Value::Num(u64::from(u)),
                    Value::Num(u64::from(g)),
                    Value::Addr(a),
                    Value::Num(u64::from(p)),
                ]
            })
            .collect()
    };
    let mut sets = Vec::new();
    for fam in [4u8, 6] {
        let mut guard = Vec::new();
        for s in &policy.servers {
            for a in &s.addresses {
                if matches!((a, fam), (IpAddr::V4(_), 4) | (IpAddr::V6(_), 6)) {
                    let ports = if s.guard.first == s.guard.last {
                        Value::Num(u64::from(s.guard.first))
                    } else {
                        Value::Range(
                            Box::new(Value::Num(u64::from(s.guard.first))),
                            Box::new(Value::Num(u64::from(s.guard.last))),
                        )
                    };
                    guard.push(vec![Value::Addr(*a), ports]);
                }
            }
        }
        guard.sort_by_key(|e| match &e[0] {
            Value::Addr(a) => *a,
            _ => IpAddr::from([0, 0, 0, 0]),
        });
        sets.push(Set {
            name: format!("guard{fam}"),
            types: vec![
                if fam == 4 {
                    DataType::Ipv4Addr
                } else {
                    DataType::Ipv6Addr
                },
                DataType::InetService,
            ],
            interval: true,
            elements: guard,
        });
    }
    for fam in [4u8, 6] {
        sets.push(Set {
            name: grants_set(fam),
            types: grant_types(fam),
            interval: false,
            elements: elems(&always, fam),
        });
    }
    let mut window_rules: [Vec<Rule>; 2] = Default::default();
    for (piece, keys) in &windows {
        for (i, fam) in [4u8, 6].into_iter().enumerate() {
            let e = elems(keys, fam);
            if e.is_empty() {
                continue;
            }
            let name = window_set(piece, fam);
            sets.push(Set {
                name: name.clone(),
                types: grant_types(fam),
                interval: false,
                elements: e,
            });
            let mut exprs = vec![Expr::Match(Match {
                left: vec![Field::Day],
                equal: true,
                right: Value::Sym(DAY_NAMES[piece.day as usize].to_string()),
            })];
            if !piece.whole_day() {
                exprs.push(Expr::Match(Match {
                    left: vec![Field::Hour],
                    equal: true,
                    right: Value::Range(
                        Box::new(Value::Sym(hhmm(piece.start))),
                        Box::new(Value::Sym(hhmm(piece.end - 1))),
                    ),
                }));
            }
            exprs.push(Expr::Match(key_match(fam, &name)));
            exprs.push(Expr::Accept);
            window_rules[i].push(Rule {
                exprs,
                comment: Some(format!(
                    "open {} {}-{} UTC",
                    DAY_SHORT[piece.day as usize],
                    hhmm(piece.start),
                    hhmm(piece.end)
                )),
            });
        }
    }
    let daddr = |fam: u8| {
        if fam == 4 {
            Field::Ip4Daddr
        } else {
            Field::Ip6Daddr
        }
    };
    let mut chains = vec![Chain {
        name: "output".into(),
        hook: Some(Hook {
            hook: "output".into(),
            prio: 0,
            accept: true,
        }),
        rules: [4u8, 6]
            .iter()
            .map(|&fam| Rule {
                exprs: vec![
                    Expr::Match(Match {
                        left: vec![daddr(fam), Field::TcpDport],
                        equal: true,
                        right: Value::SetRef(format!("guard{fam}")),
                    }),
                    Expr::Goto(format!("check{fam}")),
                ],
                comment: None,
            })
            .collect(),
    }];
    for (i, fam) in [4u8, 6].into_iter().enumerate() {
        let mut rules = Vec::new();
        if policy.defaults.exempt_root {
            rules.push(Rule {
                exprs: vec![
                    Expr::Match(Match {
                        left: vec![Field::Skuid],
                        equal: true,
                        right: Value::Num(0),
                    }),
                    Expr::Accept,
                ],
                comment: Some("exempt_root".into()),
            });
        }
        rules.push(Rule {
            exprs: vec![Expr::Match(key_match(fam, &grants_set(fam))), Expr::Accept],
            comment: None,
        });
        rules.append(&mut window_rules[i]);
        rules.push(Rule {
            exprs: vec![Expr::Goto("deny".into())],
            comment: None,
        });
        chains.push(Chain {
            name: format!("check{fam}"),
            hook: None,
            rules,
        });
    }
    let mut deny = Vec::new();
    if policy.defaults.log_denied {
        deny.push(Rule {
            exprs: vec![
                Expr::Match(Match {
                    left: vec![Field::TcpFlags(vec!["syn".into(), "ack".into()])],
                    equal: true,
                    right: Value::Sym("syn".into()),
                }),
                Expr::Log {
                    prefix: policy.defaults.log_prefix.clone(),
                    level: "info".into(),
                    skuid: true,
                },
            ],
            comment: None,
        });
    }
    deny.push(Rule {
        exprs: vec![
            Expr::Match(Match {
                left: vec![Field::L4proto],
                equal: true,
                right: Value::Sym("tcp".into()),
            }),
            Expr::RejectTcpReset,
        ],
        comment: None,
    });
    chains.push(Chain {
        name: "deny".into(),
        hook: None,
        rules: deny,
    });
    Ruleset {
        table: table.to_string(),
        sets,
        chains,
    }
}

fn key_match(fam: u8, set: &str) -> Match {
    Match {
        left: vec![
            Field::Skuid,
            Field::Skgid,
            if fam == 4 {
                Field::Ip4Daddr
            } else {
                Field::Ip6Daddr
            },
            Field::TcpDport,
        ],
        equal: true,
        right: Value::SetRef(set.to_string()),
    }
}
