//! The engine's processing node: a `pw_filter` with two DSP input ports and four DSP output
//! ports, processing in PipeWire's real-time data thread.
//!
//! pipewire-rs 0.10 wraps streams but not filters, so this module calls libpipewire's
//! `pw_filter_*` functions directly. It is the crate's only unsafe code; every block says
//! why it is sound.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::ffi::{CString, c_char, c_void};
use std::pin::Pin;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

use pipewire::core::CoreRc;
use pipewire::properties::properties;
use pipewire::spa::sys as spa_sys;
use pipewire::sys as pw_sys;

use crate::Processor;
use crate::graph::{INPUT_PORTS, OUTPUT_PORTS};
use crate::rt::RtCore;

/// Everything the callbacks see. `rt` is touched only by the data thread's `process`
/// callback; the other fields are written before `pw_filter_connect` and read-only after.
struct Shared<P: Processor> {
    rt: UnsafeCell<RtCore<P>>,
    inputs: [*mut c_void; 2],
    outputs: [*mut c_void; 4],
    state: AtomicI32,
}

/// A connected `pw_filter`; disconnected and destroyed on drop.
pub(crate) struct Filter<P: Processor> {
    raw: NonNull<pw_sys::pw_filter>,
    shared: *mut Shared<P>,
    _listener: Pin<Box<spa_sys::spa_hook>>,
    _events: Pin<Box<pw_sys::pw_filter_events>>,
    /// The filter borrows the core's connection: keep it alive as long as the filter.
    _core: CoreRc,
}

unsafe extern "C" fn on_process<P: Processor>(
    data: *mut c_void,
    position: *mut spa_sys::spa_io_position,
) {
    // SAFETY: `data` is the `Shared<P>` registered in `Filter::new`, alive until after
    // `pw_filter_destroy` returns (which stops the callbacks). Only this callback, on the one
    // data thread, takes `rt` mutably; `position` is PipeWire's io area, valid for the call.
    unsafe {
        let shared = &*(data as *const Shared<P>);
        let Some(position) = position.as_ref() else {
            return;
        };
        flush_denormals();
        let frames = position.clock.duration as u32;
        let rate = position.clock.rate.denom;
        if frames == 0 || rate == 0 {
            return;
        }
        let input = |port: *mut c_void| {
            let p = pw_sys::pw_filter_get_dsp_buffer(port, frames) as *const f32;
            (!p.is_null()).then(|| std::slice::from_raw_parts(p, frames as usize))
        };
        let output = |port: *mut c_void| {
            let p = pw_sys::pw_filter_get_dsp_buffer(port, frames) as *mut f32;
            // Each output port has its own buffer, so the four slices never alias.
            (!p.is_null()).then(|| std::slice::from_raw_parts_mut(p, frames as usize))
        };
        let inputs = [input(shared.inputs[0]), input(shared.inputs[1])];
        let mut outputs = [
            output(shared.outputs[0]),
            output(shared.outputs[1]),
            output(shared.outputs[2]),
            output(shared.outputs[3]),
        ];
        let rt = &mut *shared.rt.get();
        rt.run(
            rate,
            Some(position.clock.position),
            frames as usize,
            inputs,
            &mut outputs,
        );
    }
}

/// Sets the SSE flush-to-zero and denormals-are-zero bits for this (the data) thread, so a
/// decaying filter tail never drops into slow subnormal arithmetic, whatever the processor.
/// Two instructions; done every cycle because the thread is PipeWire's, not ours.
#[cfg(target_arch = "x86_64")]
fn flush_denormals() {
    #[allow(deprecated)] // `_mm_setcsr` is the documented way, deprecated only in favour of asm.
    // SAFETY: MXCSR bits 15 (FTZ) and 6 (DAZ) change only how subnormals round; SSE2 is
    // part of the x86_64 baseline.
    unsafe {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        _mm_setcsr(_mm_getcsr() | 0x8040);
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn flush_denormals() {}

unsafe extern "C" fn on_state_changed<P: Processor>(
    data: *mut c_void,
    _old: pw_sys::pw_filter_state,
    state: pw_sys::pw_filter_state,
    _error: *const c_char,
) {
    // SAFETY: as in `on_process`; only the atomic field is touched here.
    unsafe {
        let shared = &*(data as *const Shared<P>);
        shared.state.store(state, Relaxed);
    }
}

impl<P: Processor> Filter<P> {
    /// Creates the filter node `name`, adds its ports and connects it with real-time
    /// processing. Returns `None` if libpipewire refuses (out of memory, bad core).
    pub(crate) fn new(core: &CoreRc, name: &str, description: &str, rt: RtCore<P>) -> Option<Self> {
        let props = properties! {
            "media.type" => "Audio",
            "media.category" => "Filter",
            "media.role" => "DSP",
            "node.name" => name,
            "node.description" => description,
            // Run every cycle, also when an input is not linked: the outputs must keep
            // getting (silent) buffers.
            "node.always-process" => "true",
        };
        let c_name = CString::new(name).ok()?;
        let shared = Box::into_raw(Box::new(Shared {
            rt: UnsafeCell::new(rt),
            inputs: [ptr::null_mut(); 2],
            outputs: [ptr::null_mut(); 4],
            state: AtomicI32::new(pw_sys::pw_filter_state_PW_FILTER_STATE_UNCONNECTED),
        }));
        // SAFETY: `core` is a live connection; `pw_filter_new` takes ownership of the
        // properties (`into_raw`) and copies the name.
        let raw =
            unsafe { pw_sys::pw_filter_new(core.as_raw_ptr(), c_name.as_ptr(), props.into_raw()) };
        let Some(raw) = NonNull::new(raw) else {
            // SAFETY: `shared` came from `Box::into_raw` above and was never shared.
            drop(unsafe { Box::from_raw(shared) });
            return None;
        };
        // SAFETY: an all-zero `pw_filter_events` is "no callbacks", and an all-zero
        // `spa_hook` is an unlinked hook, as in C's `= { 0 }` initialisers.
        let mut events: Pin<Box<pw_sys::pw_filter_events>> =
            Box::pin(unsafe { std::mem::zeroed() });
        events.version = pw_sys::PW_VERSION_FILTER_EVENTS;
        events.process = Some(on_process::<P>);
        events.state_changed = Some(on_state_changed::<P>);
        let mut listener: Pin<Box<spa_sys::spa_hook>> = Box::pin(unsafe { std::mem::zeroed() });
        // The boxes' contents never move, so these pointers stay valid inside `Filter`.
        // SAFETY: the hook is only ever handed to libpipewire, which does not move it.
        let hook_ptr: *mut spa_sys::spa_hook = unsafe { listener.as_mut().get_unchecked_mut() };
        let events_ptr: *const pw_sys::pw_filter_events = events.as_ref().get_ref();

        let add_port = |direction, port_name: &str, channel: &str| {
            let props = properties! {
                "format.dsp" => "32 bit float mono audio",
                "port.name" => port_name,
                "audio.channel" => channel,
            };
            // SAFETY: `raw` is the live filter; the call takes ownership of the properties
            // and returns per-port data that lives until the filter is destroyed.
            unsafe {
                pw_sys::pw_filter_add_port(
                    raw.as_ptr(),
                    direction,
                    pw_sys::pw_filter_port_flags_PW_FILTER_PORT_FLAG_MAP_BUFFERS,
                    size_of::<u64>(),
                    props.into_raw(),
                    ptr::null_mut(),
                    0,
                )
            }
        };
        // SAFETY: nothing else references `shared` before `pw_filter_connect`.
        let sh = unsafe { &mut *shared };
        for (slot, (port, channel)) in sh.inputs.iter_mut().zip(INPUT_PORTS) {
            *slot = add_port(spa_sys::SPA_DIRECTION_INPUT, port, channel);
        }
        for (slot, (port, channel)) in sh.outputs.iter_mut().zip(OUTPUT_PORTS) {
            *slot = add_port(spa_sys::SPA_DIRECTION_OUTPUT, port, channel);
        }
        let filter = Filter {
            raw,
            shared,
            _listener: listener,
            _events: events,
            _core: core.clone(),
        };
        if sh.inputs.iter().chain(&sh.outputs).any(|p| p.is_null()) {
            return None; // dropping `filter` destroys it and frees `shared`
        }
        // SAFETY: the hook and events are pinned boxes owned by `filter`, which outlives the
        // registration (destroying the filter removes the hook); `shared` lives as long.
        unsafe {
            pw_sys::pw_filter_add_listener(
                raw.as_ptr(),
                hook_ptr.cast(),
                events_ptr,
                shared.cast(),
            );
        }
        // SAFETY: the filter is fully set up; RT_PROCESS makes `process` run in the data
        // thread, which `on_process` is written for.
        let res = unsafe {
            pw_sys::pw_filter_connect(
                raw.as_ptr(),
                pw_sys::pw_filter_flags_PW_FILTER_FLAG_RT_PROCESS,
                ptr::null_mut(),
                0,
            )
        };
        (res >= 0).then_some(filter)
    }

    /// The filter's node id in the graph, once the server announced it.
    pub(crate) fn node_id(&self) -> Option<u32> {
        // SAFETY: `raw` is a live filter.
        let id = unsafe { pw_sys::pw_filter_get_node_id(self.raw.as_ptr()) };
        (id != u32::MAX).then_some(id)
    }

    /// The last state PipeWire reported (`pw_filter_state`: -1 error ... 3 streaming).
    pub(crate) fn state(&self) -> i32 {
        // SAFETY: `shared` is alive while `self` is; only the atomic is read.
        unsafe { (*self.shared).state.load(Relaxed) }
    }
}

impl<P: Processor> Drop for Filter<P> {
    fn drop(&mut self) {
        // SAFETY: `pw_filter_destroy` disconnects the filter, waits for the data thread to
        // leave it (a blocking invoke), removes our hook, and frees it; afterwards no
        // callback can see `shared`, so it is freed last.
        unsafe {
            pw_sys::pw_filter_destroy(self.raw.as_ptr());
            drop(Box::from_raw(self.shared));
        }
    }
}
