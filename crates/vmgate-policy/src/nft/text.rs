//! The nft text form.

use std::fmt::Write as _;

use super::{Chain, Expr, Field, Match, Ruleset, Set, Value};

impl Ruleset {
    /// The script `nft -f` loads: the table replaced in one transaction
    /// (create-if-missing, delete, define), so nothing else is touched and
    /// no packet ever sees a half-loaded table. Load it with `TZ=UTC`.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let t = &self.table;
        let _ = writeln!(s, "table inet {t} {{}}");
        let _ = writeln!(s, "delete table inet {t}");
        s.push_str(&self.to_table_text());
        s
    }

    /// Only the `table inet NAME { ... }` block.
    #[must_use]
    pub fn to_table_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "table inet {} {{", self.table);
        let mut first = true;
        for set in &self.sets {
            if !first {
                s.push('\n');
            }
            first = false;
            set_text(&mut s, set);
        }
        for c in &self.chains {
            if !first {
                s.push('\n');
            }
            first = false;
            chain_text(&mut s, c);
        }
        s.push_str("}\n");
        s
    }
}

fn set_text(s: &mut String, set: &Set) {
    let _ = writeln!(s, "\tset {} {{", set.name);
    let types: Vec<_> = set.types.iter().map(|t| t.name()).collect();
    let _ = writeln!(s, "\t\ttype {}", types.join(" . "));
    if set.interval {
        s.push_str("\t\tflags interval\n");
    }
    if !set.elements.is_empty() {
        s.push_str("\t\telements = { ");
        for (i, e) in set.elements.iter().enumerate() {
            if i > 0 {
                s.push_str(",\n\t\t\t     ");
            }
            let parts: Vec<_> = e.iter().map(value_text).collect();
            s.push_str(&parts.join(" . "));
        }
        s.push_str(" }\n");
    }
    s.push_str("\t}\n");
}

fn chain_text(s: &mut String, c: &Chain) {
    let _ = writeln!(s, "\tchain {} {{", c.name);
    if let Some(h) = &c.hook {
        let prio = if h.prio == 0 {
            "filter".to_string()
        } else {
            h.prio.to_string()
        };
        let policy = if h.accept { "accept" } else { "drop" };
        let _ = writeln!(
            s,
            "\t\ttype filter hook {} priority {prio}; policy {policy};",
            h.hook
        );
    }
    for r in &c.rules {
        let parts: Vec<_> = r.exprs.iter().map(expr_text).collect();
        let mut line = parts.join(" ");
        if let Some(cm) = &r.comment {
            let _ = write!(line, " comment \"{cm}\"");
        }
        let _ = writeln!(s, "\t\t{line}");
    }
    s.push_str("\t}\n");
}

fn field_text(f: &Field) -> &'static str {
    match f {
        Field::Skuid => "meta skuid",
        Field::Skgid => "meta skgid",
        Field::L4proto => "meta l4proto",
        Field::Day => "meta day",
        Field::Hour => "meta hour",
        Field::Ip4Daddr => "ip daddr",
        Field::Ip6Daddr => "ip6 daddr",
        Field::TcpDport => "tcp dport",
        Field::TcpFlags(_) => "tcp flags",
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Num(n) => n.to_string(),
        Value::Sym(s) if s.contains(':') || s.chars().next().is_some_and(char::is_uppercase) => {
            format!("\"{s}\"")
        }
        Value::Sym(s) => s.clone(),
        Value::Addr(a) => a.to_string(),
        Value::SetRef(n) => format!("@{n}"),
        Value::Range(a, b) => format!("{}-{}", value_text(a), value_text(b)),
    }
}

fn match_text(m: &Match) -> String {
    let left: Vec<_> = m.left.iter().map(field_text).collect();
    let op = if m.equal { "" } else { "!= " };
    if let [Field::TcpFlags(mask)] = m.left.as_slice() {
        // nft's canonical form: `tcp flags syn / syn,ack`.
        return format!(
            "tcp flags {op}{} / {}",
            value_text(&m.right),
            mask.join(",")
        );
    }
    format!("{} {op}{}", left.join(" . "), value_text(&m.right))
}

fn expr_text(e: &Expr) -> String {
    match e {
        Expr::Match(m) => match_text(m),
        Expr::Accept => "accept".into(),
        Expr::Drop => "drop".into(),
        Expr::Return => "return".into(),
        Expr::Goto(c) => format!("goto {c}"),
        Expr::Jump(c) => format!("jump {c}"),
        Expr::Log {
            prefix,
            level,
            skuid,
        } => {
            let flags = if *skuid { " flags skuid" } else { "" };
            format!("log prefix \"{prefix}\" level {level}{flags}")
        }
        Expr::RejectTcpReset => "reject with tcp reset".into(),
        Expr::Counter => "counter".into(),
    }
}
