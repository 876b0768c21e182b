//! `LiveChain::process` and `LiveChain::control` never allocate nor free: a counting global
//! allocator watches the test thread through volume ramps, crossfaded switches (one of them
//! from 2 to 3 outputs), a switch replaced while pending, and the retirement of old chains.
// A global allocator is an `unsafe impl`; it only forwards to the system allocator and
// counts, in this test binary only.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use klang_dsp::{Chain, Config};
use klang_engine::processor::{Control, LiveChain};
use klang_live::Processor;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static FREES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}

fn note(counter: &AtomicUsize) {
    if WATCHING.with(Cell::get) {
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the `GlobalAlloc`
// contract; counting touches only atomics and a const-initialised thread-local `Cell`,
// neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(&ALLOCATIONS);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(&FREES);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(&ALLOCATIONS);
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(&ALLOCATIONS);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn watched<T>(f: impl FnOnce() -> T) -> T {
    WATCHING.with(|w| w.set(true));
    let r = f();
    WATCHING.with(|w| w.set(false));
    r
}

#[test]
fn process_and_control_neither_allocate_nor_free() {
    let rate = 48_000;
    let flat = Config::default();
    let mut loud = Config::from_toml(
        "low_cut_hz = 25\n[tone]\nbass_db = 4.0\ntreble_db = -2.0\n[loudness]\nenabled = true\n\
         [crossover]\nfreq = 80\nsub_delay_ms = 3.0\n[[eq]]\ntype = \"peak\"\nfreq = 63\ngain_db = -3.0\nq = 1.4\n",
    )
    .unwrap();
    loud.graphic_eq.gains_db[3] = 4.0;
    let (mut p, mut retired, status) = LiveChain::new(Chain::new(&flat, rate).unwrap(), -10.0);
    let chains: Vec<Box<Chain>> = (0..3)
        .map(|i| Box::new(Chain::new(if i % 2 == 0 { &loud } else { &flat }, rate).unwrap()))
        .collect();
    let input: Vec<f32> = (0..2 * 256)
        .map(|i| (i as f32 * 0.01).sin() * 0.8)
        .collect();
    let mut output = vec![0.0f32; 3 * 256];
    let mut chains = chains.into_iter();
    let (allocs, frees) = (
        ALLOCATIONS.load(Ordering::SeqCst),
        FREES.load(Ordering::SeqCst),
    );
    watched(|| {
        for block in 0..400 {
            match block {
                10 => p.control(Control::Volume(-30.0)),
                20 => p.control(Control::Switch(chains.next().unwrap())),
                // Replaces a pending switch (the older one is retired, not freed).
                25 => {
                    p.control(Control::Switch(chains.next().unwrap()));
                    p.control(Control::Switch(chains.next().unwrap()));
                }
                30 => p.control(Control::Volume(0.0)),
                _ => {}
            }
            let ch = p.output_channels();
            p.process(&input, &mut output[..256 * ch]);
        }
    });
    assert_eq!(
        ALLOCATIONS.load(Ordering::SeqCst) - allocs,
        0,
        "allocations"
    );
    assert_eq!(FREES.load(Ordering::SeqCst) - frees, 0, "frees");
    assert!(status.switches.load(Ordering::SeqCst) >= 2);
    // What the real-time side gave back is freed here, off the real-time thread.
    assert_eq!(retired.drain(), 3);
}
