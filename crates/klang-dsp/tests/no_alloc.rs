//! `Chain::process` and the volume setters never allocate: a counting global
//! allocator watches the test thread while a full 2.1 chain with loudness runs,
//! ramps and limits.
// A global allocator is an `unsafe impl`; it only forwards to the system
// allocator and counts, in this test binary only.
#![allow(unsafe_code)]
#![allow(clippy::field_reassign_with_default)]

use klang_dsp::config::{Crossover, EqBand, FilterType};
use klang_dsp::{Chain, Config};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if WATCHING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; counting touches only an atomic and a const-initialised
// thread-local `Cell`, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn processing_does_not_allocate() {
    let mut c = Config::default();
    c.low_cut_hz = 25.0;
    c.eq.push(EqBand {
        kind: FilterType::Peak,
        freq: 63.0,
        gain_db: -3.0,
        q: 1.41,
        slope: None,
    });
    c.graphic_eq.gains_db[3] = 4.0;
    c.tone.bass_db = 3.0;
    c.loudness.enabled = true;
    c.crossover = Some(Crossover {
        sub_delay_ms: 3.0,
        ..Crossover::default()
    });
    let mut chain = Chain::new(&c, 48_000).unwrap();
    let input: Vec<f32> = (0..2 * 48_000).map(|i| ((i as f32) * 0.01).sin()).collect();
    let mut output = vec![0f32; 3 * 48_000];

    WATCHING.with(|w| w.set(true));
    chain.set_volume_db(-50.0);
    chain.process(&input[..2 * 1000], &mut output[..3 * 1000]);
    chain.set_volume_db_now(-3.0);
    chain.set_volume_db(-30.0);
    chain.set_tone_db(-2.0, 4.0);
    chain.process(&input, &mut output);
    chain.set_tone_db(0.0, 0.0);
    chain.process(&input[..2 * 7], &mut output[..3 * 7]);
    let _ = chain.volume_db();
    WATCHING.with(|w| w.set(false));

    assert_eq!(
        ALLOCATIONS.load(Ordering::SeqCst),
        0,
        "the audio path allocated"
    );
    // The counter works: an allocation on this thread is seen.
    WATCHING.with(|w| w.set(true));
    let v = std::hint::black_box(vec![1u8; 10]);
    WATCHING.with(|w| w.set(false));
    drop(v);
    assert!(ALLOCATIONS.load(Ordering::SeqCst) > 0);
}
