//! PipeWire filter-chain configuration export: klang's chain as `builtin`
//! biquads in a virtual sink, runnable with `pipewire -c FILE` (or copy the
//! `libpipewire-module-filter-chain` entry into `pipewire.conf.d`).
//!
//! Per channel: a gain node for the preamp, one `bq_*` node per section, and a
//! gain node for the trim. With a crossover, the mains run the high pass and a
//! `mixer` sums `(L + R) / 2` times the sub gain into the sub's low pass, a
//! third (`LFE`) output.
//!
//! What PipeWire 0.3.65's builtins cannot carry (an error names it): first-order
//! sections (so LR2 crossovers), the sub delay (no `delay` builtin yet), shelves
//! with a Q other than 1/√2 (0.3.65's `bq_lowshelf`/`bq_highshelf` ignore `Q`
//! and use WebAudio's slope 1: with Q 0.9 the end-to-end test measured 0.4–0.5 dB
//! off around the corner, as a slope-1 shelf would be; the tone controls are
//! slope 1, so they are carried), and low
//! and high passes with Q below 1/√2 (BW4/LR8 crossovers): 0.3.65's
//! `bq_lowpass`/`bq_highpass` take WebAudio's resonance in dB (≥ 0) in the `Q`
//! control, which we compute from the cookbook Q, and resonance 0 dB is Q 1/√2.

use klang_dsp::config::{Config, FilterType};

use crate::error::{FormatError, cannot};
use crate::plan::{Plan, Section, lin, num};

const FORMAT: &str = "PipeWire 0.3.65 filter-chain";

/// Names of the virtual sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// `node.name` of the sink applications play to.
    pub node_name: String,
    /// Human-readable name.
    pub description: String,
    /// `target.object` of the output stream (a sink's `node.name`), or none to
    /// let the session manager pick the default.
    pub target: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            node_name: "klang_eq".into(),
            description: "klang EQ".into(),
            target: None,
        }
    }
}

/// WebAudio's lowpass/highpass resonance (dB) for a cookbook Q ≥ 1/√2.
pub fn resonance_db(q: f64) -> Option<f64> {
    let d2 = 1.0 / (q * q);
    if d2 > 2.0 + 1e-12 {
        return None;
    }
    let s = 1.0 - d2 / 2.0;
    let inv_g2 = 1.0 - s * s;
    Some((-10.0 * inv_g2.log10()).max(0.0))
}

fn node(name: &str, s: &Section) -> Result<String, FormatError> {
    let (f, g, q) = (num(s.freq), num(s.gain_db), num(s.q));
    if matches!(s.kind, FilterType::Lowshelf | FilterType::Highshelf)
        && (s.q - std::f64::consts::FRAC_1_SQRT_2).abs() > 1e-6
    {
        return Err(cannot(
            FORMAT,
            format!(
                "the {:?} of {} with Q {} (slope ≠ 1)",
                s.kind,
                s.origin,
                num(s.q)
            ),
            "PipeWire 0.3.65's shelves have WebAudio's fixed slope (Q 0.7071, slope 1): set q = 0.7071 and no slope, or export to CamillaDSP",
        ));
    }
    let (label, control) = match s.kind {
        FilterType::Peak => (
            "bq_peaking",
            format!("\"Freq\" = {f} \"Q\" = {q} \"Gain\" = {g}"),
        ),
        FilterType::Lowshelf => (
            "bq_lowshelf",
            format!("\"Freq\" = {f} \"Q\" = {q} \"Gain\" = {g}"),
        ),
        FilterType::Highshelf => (
            "bq_highshelf",
            format!("\"Freq\" = {f} \"Q\" = {q} \"Gain\" = {g}"),
        ),
        FilterType::Notch => ("bq_notch", format!("\"Freq\" = {f} \"Q\" = {q}")),
        FilterType::Bandpass => ("bq_bandpass", format!("\"Freq\" = {f} \"Q\" = {q}")),
        FilterType::Allpass => ("bq_allpass", format!("\"Freq\" = {f} \"Q\" = {q}")),
        FilterType::Lowpass | FilterType::Highpass => {
            let Some(r) = resonance_db(s.q) else {
                return Err(cannot(
                    FORMAT,
                    format!(
                        "the {:?} of {} with Q {} (below 1/√2)",
                        s.kind,
                        s.origin,
                        num(s.q)
                    ),
                    "PipeWire 0.3.65's low/high pass cannot go below Q 0.7071: use LR4 or BW2 crossovers and Q ≥ 0.7071",
                ));
            };
            let label = if s.kind == FilterType::Lowpass {
                "bq_lowpass"
            } else {
                "bq_highpass"
            };
            (label, format!("\"Freq\" = {f} \"Q\" = {}", num(r)))
        }
        other => {
            return Err(cannot(
                FORMAT,
                format!("the first-order {other:?} filter of {}", s.origin),
                "PipeWire 0.3.65 has only second-order builtins: use second-order types (and LR4/BW2 crossovers)",
            ));
        }
    };
    Ok(format!(
        "                    {{ type = builtin name = {name} label = {label} control = {{ {control} }} }}  # {}\n",
        s.origin
    ))
}

/// A plain gain: `bq_highshelf` at 0 Hz is the constant `Gain` (WebAudio's
/// definition). 0.3.65's `mixer` ignored its gain with only one input linked
/// (the end-to-end test measured the preamp missing), so it only sums the sub.
fn gain(name: &str, db: f64, what: &str) -> String {
    format!(
        "                    {{ type = builtin name = {name} label = bq_highshelf control = {{ \"Freq\" = 0.0 \"Q\" = 0.707107 \"Gain\" = {} }} }}  # {what}\n",
        num(db)
    )
}

fn mixer(name: &str, gains: &[f64], what: &str) -> String {
    let controls: Vec<String> = gains
        .iter()
        .enumerate()
        .map(|(i, g)| format!("\"Gain {}\" = {}", i + 1, num(*g)))
        .collect();
    format!(
        "                    {{ type = builtin name = {name} label = mixer control = {{ {} }} }}  # {what}\n",
        controls.join(" ")
    )
}

/// The configuration file, for a graph at `sample_rate` (only the graphic
/// EQ's sections depend on it; PipeWire scales every `Freq` to its rate).
pub fn export(config: &Config, sample_rate: u32, options: &Options) -> Result<String, FormatError> {
    let plan = Plan::new(config, sample_rate);
    if let Some(sub) = &plan.sub
        && sub.delay_ms > 0.0
    {
        return Err(cannot(
            FORMAT,
            format!(
                "the sub delay (crossover.sub_delay_ms = {})",
                num(sub.delay_ms)
            ),
            "set sub_delay_ms = 0 for the export (0.3.65 has no delay builtin), or export to CamillaDSP",
        ));
    }
    let mut nodes = String::new();
    let mut links = String::new();
    let mut outputs = Vec::new();
    let mut inputs = Vec::new();
    let mut shared_end = Vec::new();
    for (c, ch) in ["l", "r"].iter().enumerate() {
        let pre = format!("pre_{ch}");
        nodes.push_str(&gain(&pre, plan.preamp_db, "input gain"));
        inputs.push(format!("\"{pre}:In\""));
        let mut last = format!("{pre}:Out");
        for (i, s) in plan.shared.iter().enumerate() {
            let name = format!("eq_{ch}_{}", i + 1);
            nodes.push_str(&node(&name, s)?);
            links.push_str(&format!(
                "                    {{ output = \"{last}\" input = \"{name}:In\" }}\n"
            ));
            last = format!("{name}:Out");
        }
        shared_end.push(last.clone());
        for (i, s) in plan.mains_highpass.iter().enumerate() {
            let name = format!("hp_{ch}_{}", i + 1);
            nodes.push_str(&node(&name, s)?);
            links.push_str(&format!(
                "                    {{ output = \"{last}\" input = \"{name}:In\" }}\n"
            ));
            last = format!("{name}:Out");
        }
        let trim = format!("trim_{ch}");
        nodes.push_str(&gain(&trim, plan.trim_db[c], "trim"));
        links.push_str(&format!(
            "                    {{ output = \"{last}\" input = \"{trim}:In\" }}\n"
        ));
        outputs.push(format!("\"{trim}:Out\""));
    }
    if let Some(sub) = &plan.sub {
        let g = 0.5 * lin(sub.gain_db);
        nodes.push_str(&mixer("sub_sum", &[g, g], "sub = (L + R) / 2 × sub gain"));
        links.push_str(&format!(
            "                    {{ output = \"{}\" input = \"sub_sum:In 1\" }}\n",
            shared_end[0]
        ));
        links.push_str(&format!(
            "                    {{ output = \"{}\" input = \"sub_sum:In 2\" }}\n",
            shared_end[1]
        ));
        let mut last = "sub_sum:Out".to_string();
        for (i, s) in sub.lowpass.iter().enumerate() {
            let name = format!("lp_sub_{}", i + 1);
            nodes.push_str(&node(&name, s)?);
            links.push_str(&format!(
                "                    {{ output = \"{last}\" input = \"{name}:In\" }}\n"
            ));
            last = format!("{name}:Out");
        }
        outputs.push(format!("\"{last}\""));
    }
    let (channels, position) = if plan.sub.is_some() {
        (3, "[ FL FR LFE ]")
    } else {
        (2, "[ FL FR ]")
    };
    let target = options
        .target
        .as_ref()
        .map(|t| format!("                target.object = \"{t}\"\n"))
        .unwrap_or_default();
    let mut out = format!(
        "# exported by klang for {sample_rate} Hz (the graphic EQ's sections are rate-specific)\n"
    );
    for n in &plan.not_carried {
        out.push_str(&format!("# not carried: {n}\n"));
    }
    out.push_str(&format!(
        r#"# run with `pipewire -c FILE`, or copy the filter-chain entry into ~/.config/pipewire/pipewire.conf.d/
context.properties = {{
    log.level = 0
}}
context.spa-libs = {{
    audio.convert.* = audioconvert/libspa-audioconvert
    support.*       = support/libspa-support
}}
context.modules = [
    {{ name = libpipewire-module-rt args = {{ nice.level = -11 }} flags = [ ifexists nofail ] }}
    {{ name = libpipewire-module-protocol-native }}
    {{ name = libpipewire-module-client-node }}
    {{ name = libpipewire-module-adapter }}
    {{ name = libpipewire-module-filter-chain
        args = {{
            node.description = "{desc}"
            media.name = "{desc}"
            filter.graph = {{
                nodes = [
{nodes}                ]
                links = [
{links}                ]
                inputs = [ {inputs} ]
                outputs = [ {outputs} ]
            }}
            capture.props = {{
                node.name = "{name}"
                media.class = Audio/Sink
                audio.channels = 2
                audio.position = [ FL FR ]
            }}
            playback.props = {{
                node.name = "{name}.output"
                node.passive = true
                audio.channels = {channels}
                audio.position = {position}
{target}            }}
        }}
    }}
]
"#,
        desc = options.description,
        name = options.node_name,
        inputs = inputs.join(" "),
        outputs = outputs.join(" "),
    ));
    Ok(out)
}
