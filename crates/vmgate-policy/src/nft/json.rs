//! The nft JSON form, as `nft -j list table inet NAME` prints it.

use std::net::IpAddr;

use serde_json::{Value as J, json};

use super::{Chain, DataType, Expr, Field, Hook, Match, Rule, Ruleset, Set, Value};

/// The JSON does not describe a ruleset we understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The table is not in the listing.
    #[error("table inet {0} is not in the listing")]
    NoTable(String),
    /// Something outside the subset vmgate emits.
    #[error("unsupported nft JSON at {path}: {what}")]
    Unsupported {
        /// Where.
        path: String,
        /// What.
        what: String,
    },
}

fn unsupported(path: &str, v: &J) -> JsonError {
    JsonError::Unsupported {
        path: path.to_string(),
        what: v.to_string().chars().take(200).collect(),
    }
}

impl Ruleset {
    /// The JSON `nft -j list table inet NAME` prints for this table (without
    /// handles and metainfo).
    #[must_use]
    pub fn to_json(&self) -> J {
        let fam = "inet";
        let t = &self.table;
        let mut items = vec![json!({"table": {"family": fam, "name": t}})];
        for s in &self.sets {
            let mut o = json!({
                "family": fam, "name": s.name, "table": t,
                "type": s.types.iter().map(|x| x.name()).collect::<Vec<_>>(),
            });
            if s.interval {
                o["flags"] = json!(["interval"]);
            }
            if !s.elements.is_empty() {
                o["elem"] = J::Array(
                    s.elements
                        .iter()
                        .map(|e| {
                            if e.len() == 1 {
                                value_json(&e[0])
                            } else {
                                json!({"concat": e.iter().map(value_json).collect::<Vec<_>>()})
                            }
                        })
                        .collect(),
                );
            }
            items.push(json!({ "set": o }));
        }
        for c in &self.chains {
            let mut o = json!({"family": fam, "table": t, "name": c.name});
            if let Some(h) = &c.hook {
                o["type"] = json!("filter");
                o["hook"] = json!(h.hook);
                o["prio"] = json!(h.prio);
                o["policy"] = json!(if h.accept { "accept" } else { "drop" });
            }
            items.push(json!({ "chain": o }));
        }
        for c in &self.chains {
            for r in &c.rules {
                let mut o = json!({"family": fam, "table": t, "chain": c.name});
                if let Some(cm) = &r.comment {
                    o["comment"] = json!(cm);
                }
                o["expr"] = J::Array(r.exprs.iter().map(expr_json).collect());
                items.push(json!({ "rule": o }));
            }
        }
        json!({ "nftables": items })
    }

    /// Reads table `inet NAME` from `nft -j list ...` output (or [`Self::to_json`]).
    ///
    /// List with `TZ=UTC`: nft prints `meta hour` in the local time of the
    /// listing process, and the interpreter reads the hours as UTC.
    ///
    /// # Errors
    /// The table is missing or uses something outside vmgate's subset.
    pub fn from_json(doc: &J, table: &str) -> Result<Self, JsonError> {
        let items = doc
            .get("nftables")
            .and_then(J::as_array)
            .ok_or_else(|| unsupported("$", doc))?;
        let mine = |o: &J, key: &str| {
            o.get("family").and_then(J::as_str) == Some("inet")
                && o.get(key).and_then(J::as_str) == Some(table)
        };
        let mut rs = Ruleset {
            table: table.to_string(),
            sets: Vec::new(),
            chains: Vec::new(),
        };
        let mut found = false;
        for (i, item) in items.iter().enumerate() {
            let p = format!("nftables[{i}]");
            if let Some(o) = item.get("table") {
                found |= mine(o, "name");
            } else if let Some(o) = item.get("set") {
                if mine(o, "table") {
                    rs.sets.push(set_from(o, &p)?);
                }
            } else if let Some(o) = item.get("chain") {
                if mine(o, "table") {
                    rs.chains.push(chain_from(o, &p)?);
                }
            } else if let Some(o) = item.get("rule") {
                if mine(o, "table") {
                    let cname = o.get("chain").and_then(J::as_str).unwrap_or_default();
                    let rule = rule_from(o, &p)?;
                    match rs.chains.iter_mut().find(|c| c.name == cname) {
                        Some(c) => c.rules.push(rule),
                        None => return Err(unsupported(&p, o)),
                    }
                }
            }
        }
        if !found {
            return Err(JsonError::NoTable(table.to_string()));
        }
        Ok(rs)
    }
}

fn value_json(v: &Value) -> J {
    match v {
        Value::Num(n) => json!(n),
        Value::Sym(s) => json!(s),
        Value::Addr(a) => json!(a.to_string()),
        Value::SetRef(n) => json!(format!("@{n}")),
        Value::Range(a, b) => json!({"range": [value_json(a), value_json(b)]}),
    }
}

fn field_json(f: &Field) -> J {
    let meta = |k: &str| json!({"meta": {"key": k}});
    let payload = |p: &str, f: &str| json!({"payload": {"protocol": p, "field": f}});
    match f {
        Field::Skuid => meta("skuid"),
        Field::Skgid => meta("skgid"),
        Field::L4proto => meta("l4proto"),
        Field::Day => meta("day"),
        Field::Hour => meta("hour"),
        Field::Ip4Daddr => payload("ip", "daddr"),
        Field::Ip6Daddr => payload("ip6", "daddr"),
        Field::TcpDport => payload("tcp", "dport"),
        Field::TcpFlags(mask) => json!({"&": [payload("tcp", "flags"), mask]}),
    }
}

fn expr_json(e: &Expr) -> J {
    match e {
        Expr::Match(m) => {
            let left = if m.left.len() == 1 {
                field_json(&m.left[0])
            } else {
                json!({"concat": m.left.iter().map(field_json).collect::<Vec<_>>()})
            };
            let op = if m.equal { "==" } else { "!=" };
            json!({"match": {"op": op, "left": left, "right": value_json(&m.right)}})
        }
        Expr::Accept => json!({"accept": null}),
        Expr::Drop => json!({"drop": null}),
        Expr::Return => json!({"return": null}),
        Expr::Goto(c) => json!({"goto": {"target": c}}),
        Expr::Jump(c) => json!({"jump": {"target": c}}),
        Expr::Log {
            prefix,
            level,
            skuid,
        } => {
            let mut o = json!({"prefix": prefix, "level": level});
            if *skuid {
                o["flags"] = json!("skuid");
            }
            json!({ "log": o })
        }
        Expr::RejectTcpReset => json!({"reject": {"type": "tcp reset"}}),
        Expr::Counter => json!({"counter": {"packets": 0, "bytes": 0}}),
    }
}

fn set_from(o: &J, p: &str) -> Result<Set, JsonError> {
    let name = o
        .get("name")
        .and_then(J::as_str)
        .unwrap_or_default()
        .to_string();
    let types = match o.get("type") {
        Some(J::String(s)) => vec![s.as_str()],
        Some(J::Array(a)) => a.iter().filter_map(J::as_str).collect(),
        _ => return Err(unsupported(p, o)),
    };
    let types = types
        .into_iter()
        .map(|t| DataType::from_name(t).ok_or_else(|| unsupported(&format!("{p}.type"), o)))
        .collect::<Result<Vec<_>, _>>()?;
    let interval = match o.get("flags") {
        None => false,
        Some(J::Array(a)) => a.iter().any(|f| f.as_str() == Some("interval")),
        Some(J::String(s)) => s == "interval",
        Some(other) => return Err(unsupported(p, other)),
    };
    let mut elements = Vec::new();
    for (i, e) in o
        .get("elem")
        .and_then(J::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let ep = format!("{p}.elem[{i}]");
        // Elements with options (timeouts, comments) come wrapped in {"elem": {"val": ...}}.
        let e = e.get("elem").and_then(|x| x.get("val")).unwrap_or(e);
        let parts = match e.get("concat").and_then(J::as_array) {
            Some(a) => a
                .iter()
                .map(|x| value_from(x, &ep))
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![value_from(e, &ep)?],
        };
        if parts.len() != types.len() {
            return Err(unsupported(&ep, e));
        }
        elements.push(parts);
    }
    Ok(Set {
        name,
        types,
        interval,
        elements,
    })
}

fn chain_from(o: &J, p: &str) -> Result<Chain, JsonError> {
    let name = o
        .get("name")
        .and_then(J::as_str)
        .unwrap_or_default()
        .to_string();
    let hook = match o.get("hook").and_then(J::as_str) {
        None => None,
        Some(h) => {
            if o.get("type").and_then(J::as_str) != Some("filter") {
                return Err(unsupported(p, o));
            }
            Some(Hook {
                hook: h.to_string(),
                prio: o.get("prio").and_then(J::as_i64).unwrap_or(0) as i32,
                accept: o.get("policy").and_then(J::as_str) != Some("drop"),
            })
        }
    };
    Ok(Chain {
        name,
        hook,
        rules: Vec::new(),
    })
}

fn rule_from(o: &J, p: &str) -> Result<Rule, JsonError> {
    let exprs = o
        .get("expr")
        .and_then(J::as_array)
        .ok_or_else(|| unsupported(p, o))?
        .iter()
        .enumerate()
        .map(|(i, e)| expr_from(e, &format!("{p}.expr[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Rule {
        exprs,
        comment: o.get("comment").and_then(J::as_str).map(str::to_string),
    })
}

fn expr_from(e: &J, p: &str) -> Result<Expr, JsonError> {
    let obj = e.as_object().ok_or_else(|| unsupported(p, e))?;
    let (k, v) = obj.iter().next().ok_or_else(|| unsupported(p, e))?;
    Ok(match k.as_str() {
        "match" => {
            let equal = match v.get("op").and_then(J::as_str) {
                Some("==" | "in") => true,
                Some("!=") => false,
                _ => return Err(unsupported(p, v)),
            };
            let l = v.get("left").ok_or_else(|| unsupported(p, v))?;
            let left = match l.get("concat").and_then(J::as_array) {
                Some(a) => a
                    .iter()
                    .map(|x| field_from(x, p))
                    .collect::<Result<Vec<_>, _>>()?,
                None => vec![field_from(l, p)?],
            };
            let right = value_from(v.get("right").ok_or_else(|| unsupported(p, v))?, p)?;
            Expr::Match(Match { left, equal, right })
        }
        "accept" => Expr::Accept,
        "drop" => Expr::Drop,
        "return" => Expr::Return,
        "counter" => Expr::Counter,
        "goto" | "jump" => {
            let t = v
                .get("target")
                .and_then(J::as_str)
                .ok_or_else(|| unsupported(p, v))?
                .to_string();
            if k == "goto" {
                Expr::Goto(t)
            } else {
                Expr::Jump(t)
            }
        }
        "log" => Expr::Log {
            prefix: v
                .get("prefix")
                .and_then(J::as_str)
                .unwrap_or_default()
                .to_string(),
            level: v
                .get("level")
                .and_then(J::as_str)
                .unwrap_or("warn")
                .to_string(),
            skuid: match v.get("flags") {
                Some(J::String(s)) => s == "skuid" || s == "all",
                Some(J::Array(a)) => a
                    .iter()
                    .any(|f| matches!(f.as_str(), Some("skuid" | "all"))),
                _ => false,
            },
        },
        "reject" if v.get("type").and_then(J::as_str) == Some("tcp reset") => Expr::RejectTcpReset,
        _ => return Err(unsupported(p, e)),
    })
}

fn field_from(f: &J, p: &str) -> Result<Field, JsonError> {
    if let Some(m) = f.get("meta") {
        return Ok(match m.get("key").and_then(J::as_str) {
            Some("skuid") => Field::Skuid,
            Some("skgid") => Field::Skgid,
            Some("l4proto") => Field::L4proto,
            Some("day") => Field::Day,
            Some("hour") => Field::Hour,
            _ => return Err(unsupported(p, f)),
        });
    }
    if let Some(pl) = f.get("payload") {
        let proto = pl.get("protocol").and_then(J::as_str);
        let field = pl.get("field").and_then(J::as_str);
        return Ok(match (proto, field) {
            (Some("ip"), Some("daddr")) => Field::Ip4Daddr,
            (Some("ip6"), Some("daddr")) => Field::Ip6Daddr,
            (Some("tcp"), Some("dport")) => Field::TcpDport,
            _ => return Err(unsupported(p, f)),
        });
    }
    if let Some(a) = f.get("&").and_then(J::as_array) {
        let is_flags = a.first().and_then(|x| x.get("payload")).is_some_and(|pl| {
            pl.get("protocol").and_then(J::as_str) == Some("tcp")
                && pl.get("field").and_then(J::as_str) == Some("flags")
        });
        if is_flags && a.len() == 2 {
            let mask = match &a[1] {
                J::Array(m) => m.iter().filter_map(J::as_str).map(str::to_string).collect(),
                J::String(s) => vec![s.clone()],
                _ => return Err(unsupported(p, f)),
            };
            return Ok(Field::TcpFlags(mask));
        }
    }
    Err(unsupported(p, f))
}

fn value_from(v: &J, p: &str) -> Result<Value, JsonError> {
    Ok(match v {
        J::Number(n) => Value::Num(n.as_u64().ok_or_else(|| unsupported(p, v))?),
        J::String(s) if s.starts_with('@') => Value::SetRef(s[1..].to_string()),
        J::String(s) => match s.parse::<IpAddr>() {
            Ok(a) => Value::Addr(a),
            Err(_) => Value::Sym(s.clone()),
        },
        // Newer nft prints a flag list as an array: `["syn"]`.
        J::Array(a) if !a.is_empty() && a.iter().all(J::is_string) => {
            Value::Sym(a.iter().filter_map(J::as_str).collect::<Vec<_>>().join(","))
        }
        J::Object(o) if o.contains_key("range") => {
            let r = o["range"]
                .as_array()
                .filter(|a| a.len() == 2)
                .ok_or_else(|| unsupported(p, v))?;
            Value::Range(
                Box::new(value_from(&r[0], p)?),
                Box::new(value_from(&r[1], p)?),
            )
        }
        _ => return Err(unsupported(p, v)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_lists_and_wrapped_elements_of_other_nft_versions_are_read() {
        let doc = json!({"nftables": [
            {"table": {"family": "inet", "name": "t"}},
            {"set": {"family": "inet", "table": "t", "name": "s", "type": ["ipv4_addr", "inet_service"],
                     "flags": "interval",
                     "elem": [{"elem": {"val": {"concat": ["10.200.0.1", {"range": [1, 2]}]}, "comment": "x"}}]}},
            {"chain": {"family": "inet", "table": "t", "name": "c"}},
            {"rule": {"family": "inet", "table": "t", "chain": "c", "expr": [
                {"match": {"op": "==", "left": {"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, ["syn", "ack"]]}, "right": ["syn"]}},
                {"log": {"prefix": "p", "flags": ["skuid"]}},
                {"counter": {"packets": 3, "bytes": 180}}
            ]}}
        ]});
        let rs = Ruleset::from_json(&doc, "t").unwrap();
        assert_eq!(rs.sets[0].elements.len(), 1);
        assert!(rs.sets[0].interval);
        let r = &rs.chains[0].rules[0];
        assert_eq!(
            r.exprs[1],
            Expr::Log {
                prefix: "p".into(),
                level: "warn".into(),
                skuid: true
            }
        );
        match &r.exprs[0] {
            Expr::Match(m) => assert_eq!(m.right, Value::Sym("syn".into())),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn anything_outside_the_subset_is_an_error_naming_its_place() {
        let doc = json!({"nftables": [
            {"table": {"family": "inet", "name": "t"}},
            {"chain": {"family": "inet", "table": "t", "name": "c"}},
            {"rule": {"family": "inet", "table": "t", "chain": "c", "expr": [{"masquerade": null}]}}
        ]});
        let e = Ruleset::from_json(&doc, "t").unwrap_err().to_string();
        assert!(
            e.starts_with("unsupported nft JSON at nftables[2].expr[0]"),
            "{e}"
        );
        assert_eq!(
            Ruleset::from_json(&doc, "other").unwrap_err(),
            JsonError::NoTable("other".into())
        );
    }
}
