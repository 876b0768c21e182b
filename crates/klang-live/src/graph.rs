//! A model of the PipeWire graph as the registry describes it, and the pure decisions made
//! from it: which links the engine wants, and which streams its routing rules move.
//!
//! **Boundary:** nothing here talks to PipeWire; `engine` feeds registry events in and
//! carries the decisions out, so every rule is unit-tested without a running graph.

use std::collections::{BTreeMap, BTreeSet};

use crate::stats::OutputState;

/// A node as the registry announced it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct NodeInfo {
    pub name: String,
    pub media_class: String,
    pub app_name: Option<String>,
    pub binary: Option<String>,
}

/// A port as the registry announced it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PortInfo {
    pub node: u32,
    pub output: bool,
    pub name: String,
    pub channel: String,
    pub monitor: bool,
}

/// The graph as seen through the registry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    pub nodes: BTreeMap<u32, NodeInfo>,
    pub ports: BTreeMap<u32, PortInfo>,
    /// Existing links: id -> (output port, input port).
    pub links: BTreeMap<u32, (u32, u32)>,
}

/// One link the engine wants: ids of (output node, output port, input node, input port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Wanted {
    pub out_node: u32,
    pub out_port: u32,
    pub in_node: u32,
    pub in_port: u32,
}

/// What the engine should have linked now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub links: BTreeSet<Wanted>,
    pub mains: OutputState,
    pub second: OutputState,
    /// The klang sink's monitor is linked (or linkable) to the engine's inputs.
    pub sink_ready: bool,
}

/// The engine's filter port names, in the order of `rt`'s port indices.
pub(crate) const INPUT_PORTS: [(&str, &str); 2] = [("in_FL", "FL"), ("in_FR", "FR")];
pub(crate) const OUTPUT_PORTS: [(&str, &str); 4] = [
    ("main_FL", "FL"),
    ("main_FR", "FR"),
    ("second_FL", "FL"),
    ("second_FR", "FR"),
];

impl Graph {
    fn find_sink(&self, name: &str) -> Option<u32> {
        self.nodes
            .iter()
            .find(|(_, n)| n.name == name && n.media_class == "Audio/Sink")
            .map(|(&id, _)| id)
    }

    fn port_of(&self, node: u32, output: bool, pred: impl Fn(&PortInfo) -> bool) -> Option<u32> {
        self.ports
            .iter()
            .find(|(_, p)| p.node == node && p.output == output && pred(p))
            .map(|(&id, _)| id)
    }

    /// Links from our two output ports (`names`) to the playback ports of `sink`: by
    /// channel name, or our left port alone to a mono sink.
    fn output_links(&self, filter: u32, names: &[(&str, &str)], sink: u32) -> Vec<Wanted> {
        let mut out = Vec::new();
        let mono = self.port_of(sink, false, |p| p.channel == "MONO");
        for (i, (port_name, channel)) in names.iter().enumerate() {
            let Some(ours) = self.port_of(filter, true, |p| p.name == *port_name) else {
                continue;
            };
            let theirs = self
                .port_of(sink, false, |p| p.channel == *channel)
                .or(if i == 0 { mono } else { None });
            if let Some(theirs) = theirs {
                out.push(Wanted {
                    out_node: filter,
                    out_port: ours,
                    in_node: sink,
                    in_port: theirs,
                });
            }
        }
        out
    }

    /// Decides the engine's links. `sink` and `filter` are the node ids of the engine's own
    /// sink and filter once known; `mains` and `second` the configured sink names.
    pub(crate) fn plan(
        &self,
        sink: Option<u32>,
        filter: Option<u32>,
        mains: Option<&str>,
        second: Option<&str>,
    ) -> Plan {
        let mut links = BTreeSet::new();
        let mut sink_ready = false;
        if let (Some(sink), Some(filter)) = (sink, filter) {
            let mut linked = 0;
            for (port_name, channel) in INPUT_PORTS {
                let monitor = self.port_of(sink, true, |p| p.monitor && p.channel == channel);
                let ours = self.port_of(filter, false, |p| p.name == port_name);
                if let (Some(m), Some(o)) = (monitor, ours) {
                    links.insert(Wanted {
                        out_node: sink,
                        out_port: m,
                        in_node: filter,
                        in_port: o,
                    });
                    linked += 1;
                }
            }
            sink_ready = linked == INPUT_PORTS.len();
        }
        let mut output = |name: Option<&str>, ports: &[(&str, &str)]| match name {
            None => OutputState::NotConfigured,
            Some(name) => match (self.find_sink(name), filter) {
                (Some(node), Some(filter)) => {
                    let wanted = self.output_links(filter, ports, node);
                    let state = if wanted.is_empty() {
                        OutputState::Missing
                    } else {
                        OutputState::Connected
                    };
                    links.extend(wanted);
                    state
                }
                _ => OutputState::Missing,
            },
        };
        let mains = output(mains, &OUTPUT_PORTS[..2]);
        let second = output(second, &OUTPUT_PORTS[2..]);
        Plan {
            links,
            mains,
            second,
            sink_ready,
        }
    }

    /// True when a link between these two ports exists already (ours or someone else's).
    pub(crate) fn has_link(&self, out_port: u32, in_port: u32) -> bool {
        self.links.values().any(|&l| l == (out_port, in_port))
    }

    /// Playback streams that match a rule and are not in `handled` yet.
    pub(crate) fn streams_to_route(
        &self,
        rules: &[RouteRule],
        handled: &BTreeSet<u32>,
    ) -> Vec<u32> {
        self.nodes
            .iter()
            .filter(|(id, n)| {
                n.media_class == "Stream/Output/Audio"
                    && !handled.contains(id)
                    && rules
                        .iter()
                        .any(|r| r.matches(n.app_name.as_deref(), n.binary.as_deref()))
            })
            .map(|(&id, _)| id)
            .collect()
    }
}

/// Moves playback streams of matching applications to the klang sink when they appear.
///
/// Names compare case-insensitively and exactly; when both fields are given, both must
/// match. A rule with neither field is refused by [`crate::EngineConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteRule {
    /// The stream's `application.name` ("Clementine").
    pub application_name: Option<String>,
    /// The stream's `application.process.binary` ("clementine").
    pub binary: Option<String>,
}

impl RouteRule {
    /// A rule on the application name.
    pub fn application(name: &str) -> Self {
        RouteRule {
            application_name: Some(name.to_owned()),
            binary: None,
        }
    }

    /// A rule on the process binary.
    pub fn binary(name: &str) -> Self {
        RouteRule {
            application_name: None,
            binary: Some(name.to_owned()),
        }
    }

    /// Whether a stream with these properties matches.
    pub fn matches(&self, application_name: Option<&str>, binary: Option<&str>) -> bool {
        fn field(rule: Option<&String>, value: Option<&str>) -> Option<bool> {
            rule.map(|r| value.is_some_and(|v| v.eq_ignore_ascii_case(r)))
        }
        match (
            field(self.application_name.as_ref(), application_name),
            field(self.binary.as_ref(), binary),
        ) {
            (None, None) => false,
            (a, b) => a.unwrap_or(true) && b.unwrap_or(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SINK: u32 = 10;
    const FILTER: u32 = 20;
    const SPEAKERS: u32 = 30;
    const SUB: u32 = 40;

    fn node(name: &str, class: &str) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            media_class: class.into(),
            ..NodeInfo::default()
        }
    }

    fn port(node: u32, output: bool, name: &str, channel: &str, monitor: bool) -> PortInfo {
        PortInfo {
            node,
            output,
            name: name.into(),
            channel: channel.into(),
            monitor,
        }
    }

    fn graph(sub_channels: &[&str]) -> Graph {
        let mut g = Graph::default();
        g.nodes.insert(SINK, node("klang", "Audio/Sink"));
        g.nodes.insert(FILTER, node("klang.engine", ""));
        g.nodes.insert(SPEAKERS, node("speakers", "Audio/Sink"));
        g.nodes.insert(SUB, node("subwoofer", "Audio/Sink"));
        let mut id = 100;
        let mut add = |g: &mut Graph, p: PortInfo| {
            g.ports.insert(id, p);
            id += 1;
        };
        for ch in ["FL", "FR"] {
            add(
                &mut g,
                port(SINK, false, &format!("playback_{ch}"), ch, false),
            );
            add(&mut g, port(SINK, true, &format!("monitor_{ch}"), ch, true));
            add(
                &mut g,
                port(SPEAKERS, false, &format!("playback_{ch}"), ch, false),
            );
            add(
                &mut g,
                port(SPEAKERS, true, &format!("monitor_{ch}"), ch, true),
            );
        }
        for ch in sub_channels {
            add(
                &mut g,
                port(SUB, false, &format!("playback_{ch}"), ch, false),
            );
        }
        for (name, ch) in INPUT_PORTS {
            add(&mut g, port(FILTER, false, name, ch, false));
        }
        for (name, ch) in OUTPUT_PORTS {
            add(&mut g, port(FILTER, true, name, ch, false));
        }
        g
    }

    fn names(g: &Graph, plan: &Plan) -> Vec<String> {
        let n = |node: u32, port: u32| format!("{}:{}", g.nodes[&node].name, g.ports[&port].name);
        plan.links
            .iter()
            .map(|w| {
                format!(
                    "{} -> {}",
                    n(w.out_node, w.out_port),
                    n(w.in_node, w.in_port)
                )
            })
            .collect()
    }

    #[test]
    fn a_stereo_mains_and_sub_pair_is_linked_channel_by_channel_from_the_monitor() {
        let g = graph(&["FL", "FR"]);
        let plan = g.plan(
            Some(SINK),
            Some(FILTER),
            Some("speakers"),
            Some("subwoofer"),
        );
        assert_eq!(plan.mains, OutputState::Connected);
        assert_eq!(plan.second, OutputState::Connected);
        assert!(plan.sink_ready);
        assert_eq!(
            names(&g, &plan),
            [
                "klang:monitor_FL -> klang.engine:in_FL",
                "klang:monitor_FR -> klang.engine:in_FR",
                "klang.engine:main_FL -> speakers:playback_FL",
                "klang.engine:main_FR -> speakers:playback_FR",
                "klang.engine:second_FL -> subwoofer:playback_FL",
                "klang.engine:second_FR -> subwoofer:playback_FR",
            ]
        );
    }

    #[test]
    fn a_mono_second_sink_gets_only_the_left_port() {
        let g = graph(&["MONO"]);
        let plan = g.plan(
            Some(SINK),
            Some(FILTER),
            Some("speakers"),
            Some("subwoofer"),
        );
        assert!(
            names(&g, &plan)
                .contains(&"klang.engine:second_FL -> subwoofer:playback_MONO".to_owned())
        );
        assert_eq!(plan.links.len(), 5);
    }

    #[test]
    fn an_unplugged_sink_is_reported_missing_and_the_rest_stays_linked() {
        let mut g = graph(&["FL", "FR"]);
        g.nodes.remove(&SUB);
        g.ports.retain(|_, p| p.node != SUB);
        let plan = g.plan(
            Some(SINK),
            Some(FILTER),
            Some("speakers"),
            Some("subwoofer"),
        );
        assert_eq!(plan.second, OutputState::Missing);
        assert_eq!(plan.mains, OutputState::Connected);
        assert_eq!(plan.links.len(), 4);
        let plan = g.plan(Some(SINK), Some(FILTER), Some("speakers"), None);
        assert_eq!(plan.second, OutputState::NotConfigured);
    }

    #[test]
    fn a_stream_named_like_the_sink_is_not_a_sink() {
        let mut g = graph(&["FL"]);
        g.nodes
            .insert(50, node("subwoofer-2", "Stream/Output/Audio"));
        g.nodes.get_mut(&SUB).unwrap().media_class = "Stream/Output/Audio".into();
        let plan = g.plan(Some(SINK), Some(FILTER), None, Some("subwoofer"));
        assert_eq!(plan.second, OutputState::Missing);
    }

    #[test]
    fn rules_match_application_name_or_binary_case_insensitively() {
        assert!(RouteRule::application("Clementine").matches(Some("clementine"), None));
        assert!(!RouteRule::application("Clementine").matches(Some("Clementine2"), None));
        assert!(!RouteRule::application("Clementine").matches(None, Some("clementine")));
        assert!(RouteRule::binary("mpv").matches(Some("anything"), Some("MPV")));
        let both = RouteRule {
            application_name: Some("A".into()),
            binary: Some("b".into()),
        };
        assert!(both.matches(Some("a"), Some("B")));
        assert!(!both.matches(Some("a"), Some("c")));
        assert!(!RouteRule::default().matches(Some("a"), Some("b")));
    }

    #[test]
    fn only_new_matching_playback_streams_are_routed() {
        let mut g = Graph::default();
        let stream = |app: &str, class: &str| NodeInfo {
            name: format!("{app}-stream"),
            media_class: class.into(),
            app_name: Some(app.into()),
            binary: None,
        };
        g.nodes
            .insert(1, stream("Clementine", "Stream/Output/Audio"));
        g.nodes.insert(2, stream("Firefox", "Stream/Output/Audio"));
        g.nodes
            .insert(3, stream("Clementine", "Stream/Input/Audio"));
        g.nodes
            .insert(4, stream("Clementine", "Stream/Output/Audio"));
        let rules = [RouteRule::application("clementine")];
        assert_eq!(g.streams_to_route(&rules, &BTreeSet::new()), [1, 4]);
        assert_eq!(g.streams_to_route(&rules, &BTreeSet::from([1])), [4]);
    }
}
