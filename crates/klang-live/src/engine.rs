//! The engine: a thread running a PipeWire main loop that owns the "klang" sink, the
//! processing filter, the links to the output sinks, and the routing of streams.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pipewire as pw;
use pw::properties::properties;
use pw::types::ObjectType;

use crate::Processor;
use crate::demo::db_to_linear;
use crate::filter::Filter;
use crate::graph::{Graph, NodeInfo, PortInfo, RouteRule, Wanted};
use crate::rt::{Incoming, Outgoing, RtChannels, RtCore};
use crate::stats::{Stats, StatsSnapshot};

/// How the engine plugs into the graph. Sinks are chosen by `node.name` (what
/// `pactl list short sinks` prints in its second column).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// The PipeWire socket to use: a name in `$XDG_RUNTIME_DIR` ("pipewire-0") or an absolute
    /// path. `None` means libpipewire's default (`$PIPEWIRE_REMOTE`, then "pipewire-0").
    pub remote: Option<String>,
    /// `node.name` of the engine's virtual sink, the one applications play to.
    pub sink_name: String,
    /// The name desktop mixers show for it.
    pub sink_description: String,
    /// `node.name` of the sink that gets the mains (L, R).
    pub mains: Option<String>,
    /// `node.name` of the second sink: the SUB channel when the processor has three
    /// outputs, otherwise a full-range copy at `second_gain_db`.
    pub second: Option<String>,
    /// Level of the full-range copy on the second sink, in dB (ramped when changed).
    pub second_gain_db: f32,
    /// Playback streams to move to the engine's sink when they appear.
    pub routes: Vec<RouteRule>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            remote: None,
            sink_name: "klang".into(),
            sink_description: "klang speaker processor".into(),
            mains: None,
            second: None,
            second_gain_db: 0.0,
            routes: Vec::new(),
        }
    }
}

impl EngineConfig {
    /// Checks the configuration before anything touches PipeWire.
    pub fn validate(&self) -> Result<(), LiveError> {
        let bad = |field: &str, message: String, help: &str| {
            Err(LiveError::Config {
                field: field.into(),
                message,
                help: help.into(),
            })
        };
        if self.sink_name.trim().is_empty() {
            return bad(
                "sink_name",
                "is empty".into(),
                "name the sink, e.g. \"klang\"",
            );
        }
        for (field, target) in [("mains", &self.mains), ("second", &self.second)] {
            if target.as_deref() == Some(self.sink_name.as_str()) {
                return bad(
                    field,
                    format!("is the engine's own sink \"{}\"", self.sink_name),
                    "use the node name of a sound card's sink (see `pactl list short sinks`)",
                );
            }
        }
        if self.mains.is_some() && self.mains == self.second {
            return bad(
                "second",
                "is the same sink as mains".into(),
                "leave `second` unset or name a different sink",
            );
        }
        if !self.second_gain_db.is_finite() || self.second_gain_db > 24.0 {
            return bad(
                "second_gain_db",
                format!("{} dB is out of range", self.second_gain_db),
                "use a level of at most +24 dB",
            );
        }
        for (i, rule) in self.routes.iter().enumerate() {
            if rule.application_name.is_none() && rule.binary.is_none() {
                return bad(
                    &format!("routes[{i}]"),
                    "matches nothing".into(),
                    "give an application name or a binary",
                );
            }
        }
        Ok(())
    }
}

/// Everything that can go wrong starting or talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// A field of [`EngineConfig`] is invalid.
    #[error("{field}: {message} (help: {help})")]
    Config {
        field: String,
        message: String,
        help: String,
    },
    /// The processor reports a channel count the engine cannot route.
    #[error("the processor has {0} output channels; klang-live routes 2 (L, R) or 3 (L, R, SUB)")]
    Channels(usize),
    /// libpipewire refused to connect.
    #[error(
        "cannot connect to PipeWire at {remote}: {reason} (help: is PipeWire running for this user? \
         check XDG_RUNTIME_DIR, or set the remote to the socket's path)"
    )]
    Connect { remote: String, reason: String },
    /// An object could not be created.
    #[error("cannot create the {what}: {reason}")]
    Create { what: &'static str, reason: String },
    /// The graph did not reach the expected state in time.
    #[error("{0}")]
    Timeout(String),
    /// A ring buffer to the real-time thread is full (the engine is not running).
    #[error("the engine's {0} queue is full: is the engine still running?")]
    Full(&'static str),
    /// The engine thread is gone.
    #[error("the engine thread stopped: {0}")]
    Stopped(String),
}

/// A cheap, cloneable, thread-safe handle on a running engine: parameter updates, processor
/// replacement, the level of the second output, statistics.
///
/// The mutexes here only serialise *senders*; the real-time thread reads the rings without
/// locks.
pub struct EngineHandle<P: Processor> {
    controls: Arc<Mutex<rtrb::Producer<P::Control>>>,
    replaced: Arc<Mutex<rtrb::Producer<Incoming<P>>>>,
    stats: Arc<Stats>,
    status: Arc<Status>,
}

impl<P: Processor> Clone for EngineHandle<P> {
    fn clone(&self) -> Self {
        EngineHandle {
            controls: Arc::clone(&self.controls),
            replaced: Arc::clone(&self.replaced),
            stats: Arc::clone(&self.stats),
            status: Arc::clone(&self.status),
        }
    }
}

impl<P: Processor> std::fmt::Debug for EngineHandle<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHandle")
            .field("stats", &self.stats.snapshot())
            .finish_non_exhaustive()
    }
}

impl<P: Processor> EngineHandle<P> {
    /// Queues a parameter update; it is applied at the start of the next cycle. Gives the
    /// control back if the queue (256 entries) is full.
    pub fn send(&self, control: P::Control) -> Result<(), P::Control> {
        let mut ring = self.controls.lock().unwrap_or_else(PoisonError::into_inner);
        ring.push(control).map_err(|rtrb::PushError::Full(c)| c)
    }

    /// Replaces the running processor (a new configuration or preset), tuned first for the
    /// graph's current rate here, outside the real-time thread. The old one is dropped by
    /// the engine's main loop. Cross-fading, if wanted, belongs in the processor.
    pub fn replace_processor(&self, mut processor: P) -> Result<(), LiveError> {
        let channels = processor.output_channels();
        if !(2..=3).contains(&channels) {
            return Err(LiveError::Channels(channels));
        }
        let rate = self.stats.sample_rate.load(Relaxed);
        if rate != 0 {
            processor.set_sample_rate(rate);
        }
        let mut ring = self.replaced.lock().unwrap_or_else(PoisonError::into_inner);
        ring.push((Box::new(processor), rate))
            .map_err(|_| LiveError::Full("processor"))
    }

    /// Sets the level of the full-range copy on the second sink (ramped over ~10 ms).
    pub fn set_second_gain_db(&self, db: f32) {
        self.stats
            .second_gain_bits
            .store(db_to_linear(db).to_bits(), Relaxed);
    }

    /// The engine's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The counters, resetting the peak meters.
    pub fn take_peaks(&self) -> StatsSnapshot {
        self.stats.take_peaks()
    }

    /// The last error PipeWire reported to the engine (a failed link, a lost connection).
    pub fn last_error(&self) -> Option<String> {
        self.status
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// False once the engine's main loop has ended (stopped, or PipeWire went away).
    pub fn is_running(&self) -> bool {
        self.status.running.load(Relaxed)
    }
}

/// Non-real-time status shared with handles.
#[derive(Debug, Default)]
struct Status {
    last_error: Mutex<Option<String>>,
    running: std::sync::atomic::AtomicBool,
}

impl Status {
    fn error(&self, message: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(message);
    }
}

/// A running engine. Dropping it stops the engine and removes its sink from the graph.
pub struct Engine<P: Processor> {
    handle: EngineHandle<P>,
    stop: Option<pw::channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl<P: Processor> std::fmt::Debug for Engine<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

const CONTROL_QUEUE: usize = 256;
/// The main loop's housekeeping period: retuning, freeing, relinking, routing.
const TICK: Duration = Duration::from_millis(20);
/// How long a link we asked for may take to appear before we ask again.
const LINK_RETRY: Duration = Duration::from_secs(1);
const START_TIMEOUT: Duration = Duration::from_secs(10);

impl<P: Processor> Engine<P> {
    /// Connects to PipeWire, creates the sink and the processing node, links the outputs
    /// that exist, and returns once audio can flow into the sink. `set_sample_rate` is called
    /// with the graph's rate before the processor runs.
    pub fn start(config: EngineConfig, processor: P) -> Result<Self, LiveError> {
        config.validate()?;
        let channels = processor.output_channels();
        if !(2..=3).contains(&channels) {
            return Err(LiveError::Channels(channels));
        }
        let stats = Arc::new(Stats::new(db_to_linear(config.second_gain_db)));
        let status = Arc::new(Status::default());
        let (controls, controls_rx) = rtrb::RingBuffer::new(CONTROL_QUEUE);
        let (retuned, retuned_rx) = rtrb::RingBuffer::new(4);
        let (replaced, replaced_rx) = rtrb::RingBuffer::new(4);
        let (outgoing_tx, outgoing) = rtrb::RingBuffer::new(16);
        let channels = RtChannels {
            controls: controls_rx,
            retuned: retuned_rx,
            replaced: replaced_rx,
            outgoing: outgoing_tx,
        };
        // Rate 0: the first cycle hands the processor to the main loop to be tuned.
        let rt = RtCore::new(Box::new(processor), 0, channels, Arc::clone(&stats));
        let (stop, stop_rx) = pw::channel::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let main = MainSide {
            config,
            retuned,
            outgoing,
            stats: Arc::clone(&stats),
            status: Arc::clone(&status),
        };
        let thread = std::thread::Builder::new()
            .name("klang-live".into())
            .spawn(move || main.run(rt, stop_rx, ready_tx))
            .map_err(|e| LiveError::Stopped(e.to_string()))?;
        let handle = EngineHandle {
            controls: Arc::new(Mutex::new(controls)),
            replaced: Arc::new(Mutex::new(replaced)),
            stats,
            status,
        };
        let mut engine = Engine {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        };
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => Ok(engine),
            Ok(Err(e)) => {
                engine.shutdown();
                Err(e)
            }
            Err(_) => {
                engine.shutdown();
                Err(LiveError::Timeout(format!(
                    "the engine's sink was not linked within {} s (help: is WirePlumber running?)",
                    START_TIMEOUT.as_secs()
                )))
            }
        }
    }

    /// A handle for other threads (`klang ctl`).
    pub fn handle(&self) -> EngineHandle<P> {
        self.handle.clone()
    }

    /// The engine's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.handle.stats()
    }

    /// Stops the engine and waits for its thread; the sink disappears from the graph.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl<P: Processor> Drop for Engine<P> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What the engine thread owns besides the PipeWire objects.
struct MainSide<P: Processor> {
    config: EngineConfig,
    retuned: rtrb::Producer<Incoming<P>>,
    outgoing: rtrb::Consumer<Outgoing<P>>,
    stats: Arc<Stats>,
    status: Arc<Status>,
}

fn props_get(props: Option<&pw::spa::utils::dict::DictRef>, key: &str) -> Option<String> {
    props.and_then(|p| p.get(key)).map(str::to_owned)
}

fn parse_u32(props: Option<&pw::spa::utils::dict::DictRef>, key: &str) -> Option<u32> {
    props_get(props, key).and_then(|v| v.parse().ok())
}

impl<P: Processor> MainSide<P> {
    fn run(
        self,
        rt: RtCore<P>,
        stop: pw::channel::Receiver<()>,
        ready: mpsc::Sender<Result<(), LiveError>>,
    ) {
        let status = Arc::clone(&self.status);
        status.running.store(true, Relaxed);
        if let Err(e) = self.run_loop(rt, stop, &ready) {
            let _ = ready.send(Err(e));
        }
        status.running.store(false, Relaxed);
    }

    fn run_loop(
        self,
        rt: RtCore<P>,
        stop: pw::channel::Receiver<()>,
        ready: &mpsc::Sender<Result<(), LiveError>>,
    ) -> Result<(), LiveError> {
        pw::init();
        let create = |what: &'static str| {
            move |e: pw::Error| LiveError::Create {
                what,
                reason: e.to_string(),
            }
        };
        let mainloop =
            pw::main_loop::MainLoopRc::new(None).map_err(create("PipeWire main loop"))?;
        let context =
            pw::context::ContextRc::new(&mainloop, None).map_err(create("PipeWire context"))?;
        let remote = self.config.remote.clone();
        let core = context
            .connect_rc(
                remote
                    .as_ref()
                    .map(|r| properties! { "remote.name" => r.as_str() }),
            )
            .map_err(|e| LiveError::Connect {
                remote: remote
                    .clone()
                    .unwrap_or_else(|| "the default socket".into()),
                reason: e.to_string(),
            })?;
        let registry = core.get_registry_rc().map_err(create("registry"))?;

        let _core_listener = {
            let status = Arc::clone(&self.status);
            let mainloop = mainloop.downgrade();
            core.add_listener_local()
                .error(move |id, _seq, res, message| {
                    status.error(format!("PipeWire error on object {id}: {message} ({res})"));
                    if id == pw::core::PW_ID_CORE && res == -EPIPE {
                        // The connection to the server is gone: nothing left to drive.
                        if let Some(l) = mainloop.upgrade() {
                            l.quit();
                        }
                    }
                })
                .register()
        };

        let cfg = self.config.clone();
        let sink: pw::node::Node = core
            .create_object(
                "adapter",
                &properties! {
                    "factory.name" => "support.null-audio-sink",
                    "node.name" => cfg.sink_name.as_str(),
                    "node.description" => cfg.sink_description.as_str(),
                    "media.class" => "Audio/Sink",
                    "audio.position" => "FL,FR",
                    // The sink's volume and mute (pavucontrol, media keys) act on what klang
                    // processes, as on a sound card; klang's own volume comes after.
                    "monitor.channel-volumes" => "true",
                    "object.linger" => "false",
                },
            )
            .map_err(create("klang sink"))?;
        let sink_id = Rc::new(Cell::new(None::<u32>));
        let _sink_listener = {
            let sink_id = Rc::clone(&sink_id);
            sink.add_listener_local()
                .info(move |info| sink_id.set(Some(info.id())))
                .register()
        };

        let filter_name = format!("{}.engine", cfg.sink_name);
        let filter = Filter::new(
            &core,
            &filter_name,
            &format!("{} processing", cfg.sink_description),
            rt,
        )
        .map(Rc::new)
        .ok_or(LiveError::Create {
            what: "processing filter",
            reason: "libpipewire refused it".into(),
        })?;

        let graph = Rc::new(RefCell::new(Graph::default()));
        let metadata_global = Rc::new(RefCell::new(None));
        let _registry_listener = {
            let graph = Rc::clone(&graph);
            let graph_rm = Rc::clone(&graph);
            let metadata_global = Rc::clone(&metadata_global);
            registry
                .add_listener_local()
                .global(move |global| {
                    let props = global.props;
                    let mut g = graph.borrow_mut();
                    match global.type_ {
                        ObjectType::Node => {
                            g.nodes.insert(
                                global.id,
                                NodeInfo {
                                    name: props_get(props, "node.name").unwrap_or_default(),
                                    media_class: props_get(props, "media.class")
                                        .unwrap_or_default(),
                                    app_name: props_get(props, "application.name"),
                                    binary: props_get(props, "application.process.binary"),
                                },
                            );
                        }
                        ObjectType::Port => {
                            if let Some(node) = parse_u32(props, "node.id") {
                                g.ports.insert(
                                    global.id,
                                    PortInfo {
                                        node,
                                        output: props_get(props, "port.direction").as_deref()
                                            == Some("out"),
                                        name: props_get(props, "port.name").unwrap_or_default(),
                                        channel: props_get(props, "audio.channel")
                                            .unwrap_or_default(),
                                        monitor: props_get(props, "port.monitor").as_deref()
                                            == Some("true"),
                                    },
                                );
                            }
                        }
                        ObjectType::Link => {
                            if let (Some(o), Some(i)) = (
                                parse_u32(props, "link.output.port"),
                                parse_u32(props, "link.input.port"),
                            ) {
                                g.links.insert(global.id, (o, i));
                            }
                        }
                        ObjectType::Metadata
                            if props_get(props, "metadata.name").as_deref() == Some("default") =>
                        {
                            *metadata_global.borrow_mut() = Some(global.to_owned());
                        }
                        _ => {}
                    }
                })
                .global_remove(move |id| {
                    let mut g = graph_rm.borrow_mut();
                    g.nodes.remove(&id);
                    g.ports.remove(&id);
                    g.links.remove(&id);
                })
                .register()
        };

        let housekeeping = RefCell::new(Housekeeping {
            core: core.clone(),
            registry: registry.clone(),
            graph: Rc::clone(&graph),
            metadata_global: Rc::clone(&metadata_global),
            sink_id: Rc::clone(&sink_id),
            filter: Rc::clone(&filter),
            links: BTreeMap::new(),
            metadata: None,
            routed: BTreeSet::new(),
            waiting: VecDeque::new(),
            ready: Some(ready.clone()),
            started: Instant::now(),
            main: self,
        });
        let timer = mainloop
            .loop_()
            .add_timer(move |_| housekeeping.borrow_mut().tick());
        timer.update_timer(Some(TICK), Some(TICK));

        let _stop = stop.attach(mainloop.loop_(), {
            let mainloop = mainloop.clone();
            move |()| mainloop.quit()
        });
        mainloop.run();
        drop(timer);
        drop(filter);
        drop(sink);
        Ok(())
    }
}

/// The main loop's periodic work, run every [`TICK`].
struct Housekeeping<P: Processor> {
    main: MainSide<P>,
    core: pw::core::CoreRc,
    registry: pw::registry::RegistryRc,
    graph: Rc<RefCell<Graph>>,
    metadata_global: Rc<RefCell<Option<pw::registry::GlobalObject<pw::properties::PropertiesBox>>>>,
    sink_id: Rc<Cell<Option<u32>>>,
    filter: Rc<Filter<P>>,
    /// The links this engine asked for, with when it asked.
    links: BTreeMap<Wanted, (pw::link::Link, Instant)>,
    metadata: Option<pw::metadata::Metadata>,
    /// Streams the routing rules already moved (moved once, when they appear).
    routed: BTreeSet<u32>,
    /// Retuned processors waiting for room in the ring to the real-time thread.
    waiting: VecDeque<Incoming<P>>,
    ready: Option<mpsc::Sender<Result<(), LiveError>>>,
    started: Instant,
}

impl<P: Processor> Housekeeping<P> {
    fn tick(&mut self) {
        self.service_processors();
        let plan = self.link();
        self.route();
        if let Some(tx) = self.ready.as_ref() {
            if plan {
                let _ = tx.send(Ok(()));
                self.ready = None;
            } else if self.started.elapsed() > START_TIMEOUT {
                self.ready = None;
            }
        }
    }

    /// Tunes processors the real-time thread sent for a new rate, frees retired ones.
    fn service_processors(&mut self) {
        while let Ok(out) = self.main.outgoing.pop() {
            match out {
                Outgoing::Retune(mut p, rate) => {
                    p.set_sample_rate(rate);
                    self.waiting.push_back((p, rate));
                }
                Outgoing::Retired(p) => drop(p),
            }
        }
        while let Some(next) = self.waiting.pop_front() {
            if let Err(rtrb::PushError::Full(back)) = self.main.retuned.push(next) {
                self.waiting.push_front(back);
                break;
            }
        }
    }

    /// Creates the links the plan wants and drops the ones it no longer wants; returns
    /// whether the engine's sink is linked to the filter.
    fn link(&mut self) -> bool {
        let g = self.graph.borrow();
        let filter_id = self.filter.node_id();
        if self.filter.state() == pw::sys::pw_filter_state_PW_FILTER_STATE_ERROR {
            self.main
                .status
                .error("the processing filter is in the error state".into());
        }
        let cfg = &self.main.config;
        let plan = g.plan(
            self.sink_id.get(),
            filter_id,
            cfg.mains.as_deref(),
            cfg.second.as_deref(),
        );
        self.links.retain(|w, _| plan.links.contains(w));
        for w in &plan.links {
            let existing = g.has_link(w.out_port, w.in_port);
            if !existing
                && self
                    .links
                    .get(w)
                    .is_some_and(|(_, t)| t.elapsed() > LINK_RETRY)
            {
                self.links.remove(w);
            }
            if existing || self.links.contains_key(w) {
                continue;
            }
            let created = self.core.create_object::<pw::link::Link>(
                "link-factory",
                &properties! {
                    "link.output.node" => w.out_node.to_string(),
                    "link.output.port" => w.out_port.to_string(),
                    "link.input.node" => w.in_node.to_string(),
                    "link.input.port" => w.in_port.to_string(),
                    "object.linger" => "false",
                },
            );
            match created {
                Ok(link) => {
                    self.links.insert(*w, (link, Instant::now()));
                }
                Err(e) => self.main.status.error(format!("cannot create a link: {e}")),
            }
        }
        let inputs_linked = plan
            .links
            .iter()
            .filter(|w| Some(w.in_node) == filter_id)
            .all(|w| g.has_link(w.out_port, w.in_port));
        let sink_ready = plan.sink_ready && inputs_linked;
        self.main.stats.set_outputs(plan.mains, plan.second);
        self.main.stats.sink_ready.store(sink_ready, Relaxed);
        sink_ready
    }

    /// Points new matching streams at the engine's sink through the "default" metadata,
    /// which WirePlumber's policy follows (`target.object`, a node name).
    fn route(&mut self) {
        if self.main.config.routes.is_empty() {
            return;
        }
        if self.metadata.is_none() {
            if let Some(global) = self.metadata_global.borrow().as_ref() {
                self.metadata = self.registry.bind(global).ok();
            }
        }
        let g = self.graph.borrow();
        if let Some(m) = self.metadata.as_ref() {
            for id in g.streams_to_route(&self.main.config.routes, &self.routed) {
                m.set_property(id, "target.object", None, Some(&self.main.config.sink_name));
                self.routed.insert(id);
            }
        }
        self.routed.retain(|id| g.nodes.contains_key(id));
    }
}

/// EPIPE (Linux), the error PipeWire reports on the core when the server hung up.
const EPIPE: i32 = 32;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{Gain, Split};

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}

    #[test]
    fn handles_can_go_to_other_threads() {
        assert_send_sync::<EngineHandle<Gain>>();
        assert_send_sync::<EngineHandle<Split>>();
        assert_send::<Engine<Split>>();
    }

    #[test]
    fn a_config_that_would_feed_the_engine_back_into_itself_is_refused() {
        let c = EngineConfig {
            mains: Some("klang".into()),
            ..EngineConfig::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.starts_with("mains: is the engine's own sink \"klang\""),
            "{e}"
        );
        let c = EngineConfig {
            mains: Some("a".into()),
            second: Some("a".into()),
            ..EngineConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("second: is the same sink as mains")
        );
        let c = EngineConfig {
            routes: vec![RouteRule::default()],
            ..EngineConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("routes[0]: matches nothing")
        );
        let c = EngineConfig {
            second_gain_db: f32::NAN,
            ..EngineConfig::default()
        };
        assert!(c.validate().is_err());
        assert!(EngineConfig::default().validate().is_ok());
    }

    #[test]
    fn starting_without_a_pipewire_server_fails_with_a_hint() {
        let c = EngineConfig {
            remote: Some("/nonexistent/klang-test/pipewire-0".into()),
            ..EngineConfig::default()
        };
        let e = Engine::start(c, Gain::new(0.0)).unwrap_err().to_string();
        assert!(
            e.contains("cannot connect to PipeWire at /nonexistent/klang-test/pipewire-0"),
            "{e}"
        );
        assert!(e.contains("is PipeWire running"), "{e}");
    }

    /// A processor with a channel layout the engine cannot route.
    struct Surround;
    impl Processor for Surround {
        type Control = ();
        fn process(&mut self, _: &[f32], _: &mut [f32]) {}
        fn output_channels(&self) -> usize {
            6
        }
        fn set_sample_rate(&mut self, _: u32) {}
        fn control(&mut self, (): ()) {}
    }

    #[test]
    fn a_processor_with_six_outputs_is_refused_before_connecting() {
        let e = Engine::start(EngineConfig::default(), Surround).unwrap_err();
        assert!(matches!(e, LiveError::Channels(6)), "{e}");
    }
}
