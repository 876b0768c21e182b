//! `klang run` and `klang ctl`'s logic, between klang-dsp's pure [`klang_dsp::Chain`] and
//! klang-live's PipeWire engine.
//!
//! - [`processor::LiveChain`]: the chain as a real-time [`klang_live::Processor`]. Volume
//!   and mute ramp in the chain; every change that needs a new design (bass, treble,
//!   loudness, bypass, preset, reload) is a new chain built off the real-time thread and
//!   crossfaded in (50 ms warm-up, 100 ms equal-gain fade) with the limiter's ceiling held.
//!   It starts muted and ramps to the saved volume.
//! - [`runconfig::RunConfig`]: klang's speaker TOML plus `[output]`, `[[route]]` and
//!   `[control]`, validated before anything starts, errors with line and field.
//! - [`state::State`]: volume, mute, preset and switches, saved atomically on every change
//!   to `$XDG_STATE_HOME/klang/state.toml` and restored on start.
//! - [`protocol`]: one JSON request and one JSON answer per connection on the Unix socket
//!   `$XDG_RUNTIME_DIR/klang/control.sock`.
//! - [`controller::Controller`]: validates and builds, sends chains and volumes to the
//!   processor, frees what comes back, saves the state, answers requests.
//! - [`remote`]: the phone page (klang-remote's server) wired to the controller: a
//!   page's command becomes the same [`protocol::Request`] `klang ctl` sends, and every
//!   change is pushed to every open page with the chain's response.
//! - [`run::run`]: the `klang run` loop.
//!
//! # Boundaries
//! The real-time path ([`processor::LiveChain::process`] and `control`) never allocates,
//! frees, locks or blocks (a counting-allocator test checks it through a switch). All I/O
//! (files, socket) is in the controller and `run`, on the main thread; the remote's HTTP
//! server runs on a thread of its own and reaches the engine only through the controller.
//!
//! ```
//! use klang_dsp::{Chain, config::Config};
//! use klang_engine::processor::{Control, LiveChain};
//! use klang_live::Processor;
//!
//! let (mut p, mut retired, _status) = LiveChain::new(Chain::new(&Config::default(), 48_000)?, -20.0);
//! let mut louder = Config::default();
//! louder.tone.bass_db = 6.0;
//! p.control(Control::Switch(Box::new(Chain::new(&louder, 48_000)?)));
//! let (input, mut output) = (vec![0.1f32; 2 * 256], vec![0.0f32; 2 * 256]);
//! for _ in 0..40 {
//!     p.process(&input, &mut output);
//! }
//! assert_eq!(retired.drain(), 1); // the old chain, freed here, off the real-time thread
//! # Ok::<(), klang_dsp::ChainError>(())
//! ```

pub mod controller;
pub mod processor;
pub mod protocol;
pub mod remote;
pub mod run;
pub mod runconfig;
pub mod state;
