//! Structural differences between two rulesets (the live table and a fresh
//! compile): linear in their size, so `verify` can check 10,000 users exactly
//! and leave the access matrix for display.

use std::collections::BTreeSet;

use super::{Ruleset, Value};

fn element_text(e: &[Value]) -> String {
    e.iter()
        .map(|v| match v {
            Value::Num(n) => n.to_string(),
            Value::Sym(s) => s.clone(),
            Value::Addr(a) => a.to_string(),
            Value::SetRef(s) => format!("@{s}"),
            Value::Range(a, b) => format!(
                "{}-{}",
                element_text(&[(**a).clone()]),
                element_text(&[(**b).clone()])
            ),
        })
        .collect::<Vec<_>>()
        .join(" . ")
}

/// What differs between `live` and `want`, one sentence per difference;
/// empty when they mean the same (set element order is ignored).
#[must_use]
pub fn diff(live: &Ruleset, want: &Ruleset) -> Vec<String> {
    let mut out = Vec::new();
    for w in &want.sets {
        let Some(l) = live.set(&w.name) else {
            out.push(format!("set {} is missing", w.name));
            continue;
        };
        if l.types != w.types || l.interval != w.interval {
            out.push(format!("set {} has another type or flags", w.name));
        }
        let lset: BTreeSet<String> = l.elements.iter().map(|e| element_text(e)).collect();
        let wset: BTreeSet<String> = w.elements.iter().map(|e| element_text(e)).collect();
        for e in wset.difference(&lset) {
            out.push(format!("set {} lacks element {e}", w.name));
        }
        for e in lset.difference(&wset) {
            out.push(format!("set {} has an extra element {e}", w.name));
        }
    }
    for l in &live.sets {
        if want.set(&l.name).is_none() {
            out.push(format!("set {} is not in the policy", l.name));
        }
    }
    for w in &want.chains {
        match live.chain(&w.name) {
            None => out.push(format!("chain {} is missing", w.name)),
            Some(l) if l.hook != w.hook => {
                out.push(format!("chain {} has another hook or policy", w.name))
            }
            Some(l) if l.rules.len() != w.rules.len() => out.push(format!(
                "chain {} has {} rules instead of {}",
                w.name,
                l.rules.len(),
                w.rules.len()
            )),
            Some(l) => {
                for (i, (a, b)) in l.rules.iter().zip(&w.rules).enumerate() {
                    if a.exprs != b.exprs {
                        out.push(format!("chain {} rule {} differs", w.name, i + 1));
                    }
                }
            }
        }
    }
    for l in &live.chains {
        if want.chain(&l.name).is_none() {
            out.push(format!("chain {} is not in the policy", l.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckInput, PlanOptions, check, example, plan};

    #[test]
    fn a_hand_added_element_and_a_removed_rule_are_named() {
        let p = check(
            &CheckInput {
                file: "office.toml",
                text: example::OFFICE_TOML,
                system_timezone: jiff::tz::TimeZone::UTC,
            },
            &example::demo_directory(),
        )
        .unwrap();
        let want = plan(
            &p,
            &PlanOptions::new("2026-12-02T09:00:00Z".parse().unwrap()),
        )
        .ruleset;
        assert!(diff(&want, &want).is_empty());
        let mut live = want.clone();
        live.sets[2].elements.push(vec![
            Value::Num(1022),
            Value::Num(990),
            Value::Addr("192.168.10.5".parse().unwrap()),
            Value::Num(20002),
        ]);
        live.sets[2].elements.reverse();
        live.chains[3].rules.remove(0);
        assert_eq!(
            diff(&live, &want),
            vec![
                "set grants4 has an extra element 1022 . 990 . 192.168.10.5 . 20002".to_string(),
                "chain deny has 1 rules instead of 2".to_string(),
            ]
        );
    }
}
