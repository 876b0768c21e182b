//! klang's PipeWire edge: the "klang" virtual sink that applications play to, a real-time
//! processing node that feeds the mains and an optional second sink (subwoofer or a
//! full-range copy), and routing rules that move chosen applications to the sink.
//!
//! The DSP is not here: the engine runs any [`Processor`] (klang-dsp's chain, or the small
//! [`demo`] processors) and talks to it through wait-free rings.
//!
//! # Design
//! Three PipeWire objects, all owned by the engine's client (they vanish with it):
//! - **the sink**, a `support.null-audio-sink` adapter node (`media.class = Audio/Sink`), the
//!   same kind of node `pactl load-module module-null-sink` makes. WirePlumber, pavucontrol
//!   and `pactl` treat it as an ordinary sink: streams are routed to it, its volume works.
//! - **the filter**, a `pw_filter` with inputs `in_FL/in_FR` and outputs `main_FL/main_FR`,
//!   `second_FL/second_FR`. Its process callback runs in PipeWire's real-time thread and is
//!   the only place audio is touched: one callback sees input and outputs of the same cycle,
//!   so there are no ring buffers and no added latency.
//! - **links** the engine creates itself: sink monitor → filter inputs, filter outputs →
//!   the configured sinks by `node.name`. The filter has no media class, so WirePlumber
//!   never links or moves it. When an output sink disappears its links go with it; the
//!   engine notices through the registry, reports the output `Missing`, and links again
//!   when a sink of that name returns.
//!
//! Filter ports are DSP ports (32-bit float, mono, the graph's rate), so the engine always
//! runs at the graph's rate and quantum: a rate change hands the processor to the main loop
//! for [`Processor::set_sample_rate`] (silence meanwhile), and any quantum is cut into
//! blocks of at most 256 frames.
//!
//! The alternative, a capture stream with `media.class = Audio/Sink` plus one playback
//! stream per output (as module-loopback does), needs ring buffers between three process
//! callbacks, `node.group` tricks to keep them in one cycle, and fights WirePlumber when a
//! target disappears (it moves the stream to the default sink: the subwoofer channel would
//! land on the speakers).
//!
//! # Example
//! ```no_run
//! use klang_live::{Engine, EngineConfig, RouteRule, demo::Gain};
//!
//! let config = EngineConfig {
//!     mains: Some("alsa_output.pci-0000_00_1f.3.analog-stereo".into()),
//!     routes: vec![RouteRule::application("Clementine")],
//!     ..EngineConfig::default()
//! };
//! let engine = Engine::start(config, Gain::new(-6.0))?;
//! let handle = engine.handle();
//! handle.send(-12.0).ok(); // a Gain control: the new gain in dB
//! println!("{:?}", handle.stats());
//! # Ok::<(), klang_live::LiveError>(())
//! ```

pub mod demo;
mod engine;
mod filter;
mod graph;
pub mod playrec;
mod processor;
mod rt;
mod stats;

pub use engine::{Engine, EngineConfig, EngineHandle, LiveError};
pub use graph::RouteRule;
pub use processor::Processor;
pub use stats::{OutputState, Stats, StatsSnapshot};
