//! A cascade of biquad sections run over `C` channels at once.
//!
//! Layout and loop order are chosen for speed without `unsafe` or explicit SIMD:
//! frames are `[f64; C]` (so the channels of one frame sit in one SSE2 vector
//! register and every operation is a packed one), coefficients are broadcast
//! to all lanes up front, and sections run in groups of four *skewed* over
//! the frames (section k of a group works on frame t − k in step t), so the
//! four feedback recursions are independent within a step and overlap in the
//! CPU instead of waiting on each other. The skew is filled and drained inside
//! every call, so there is no latency and the result does not depend on how
//! the audio is cut into blocks (a property test checks this bit for bit).
//! Every section runs the same code: first-order sections and identities are
//! biquads with zero coefficients, so there is no branching on the filter type
//! per sample. Measured alternatives that were slower on the development
//! machine: plain sample-outer loops (≈ 40 % slower), groups of 3, 5, 6 or 8,
//! a state update with the output substituted, and AVX2/FMA code generation.

use crate::biquad::BiquadCoefficients;

#[derive(Debug, Clone, Copy)]
struct Section<const C: usize> {
    c: BiquadCoefficients,
    s1: [f64; C],
    s2: [f64; C],
}

/// A chain of sections with per-channel f64 state (transposed direct form II).
#[derive(Debug, Clone)]
pub struct Cascade<const C: usize> {
    sections: Vec<Section<C>>,
}

/// Below this a state value is flushed to zero (−600 dB: inaudible, far above the
/// subnormal range, so decaying tails never hit x86's slow subnormal path).
const FLUSH: f64 = 1e-30;

impl<const C: usize> Cascade<C> {
    /// A cascade of the given sections, at rest.
    pub fn new(coeffs: &[BiquadCoefficients]) -> Self {
        Cascade {
            sections: coeffs
                .iter()
                .map(|&c| Section {
                    c,
                    s1: [0.0; C],
                    s2: [0.0; C],
                })
                .collect(),
        }
    }

    /// Number of sections.
    pub fn len(&self) -> usize {
        self.sections.len()
    }

    /// No sections at all.
    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }

    /// Replaces the coefficients of section `i`, keeping its state (used for
    /// small, ramped changes such as loudness following the volume).
    pub fn set_coefficients(&mut self, i: usize, c: BiquadCoefficients) {
        self.sections[i].c = c;
    }

    /// The coefficients of every section.
    pub fn coefficients(&self) -> impl Iterator<Item = BiquadCoefficients> + '_ {
        self.sections.iter().map(|s| s.c)
    }

    /// Processes frames in place. Does not allocate.
    pub fn process(&mut self, frames: &mut [[f64; C]]) {
        let sections = &mut self.sections[..];
        // Groups of GROUP sections run sample by sample with their state in
        // registers: the CPU overlaps the groups' independent feedback paths.
        let mut chunks = sections.chunks_exact_mut(GROUP);
        for group in &mut chunks {
            let group: &mut [Section<C>; GROUP] = group.try_into().expect("chunk of GROUP");
            run_group(group, frames);
        }
        let rest = chunks.into_remainder();
        match rest.len() {
            0 => {}
            1 => run_group::<C, 1>(rest.try_into().expect("1"), frames),
            2 => run_group::<C, 2>(rest.try_into().expect("2"), frames),
            3 => run_group::<C, 3>(rest.try_into().expect("3"), frames),
            4 => run_group::<C, 4>(rest.try_into().expect("4"), frames),
            5 => run_group::<C, 5>(rest.try_into().expect("5"), frames),
            6 => run_group::<C, 6>(rest.try_into().expect("6"), frames),
            _ => {
                for s in rest.chunks_mut(1) {
                    run_group::<C, 1>(s.try_into().expect("1"), frames);
                }
            }
        }
        for s in sections.iter_mut() {
            for ch in 0..C {
                if s.s1[ch].abs() < FLUSH {
                    s.s1[ch] = 0.0;
                }
                if s.s2[ch].abs() < FLUSH {
                    s.s2[ch] = 0.0;
                }
            }
        }
    }

    /// Forgets the past.
    pub fn reset(&mut self) {
        for s in &mut self.sections {
            s.s1 = [0.0; C];
            s.s2 = [0.0; C];
        }
    }
}

const GROUP: usize = 4;

/// Coefficients broadcast to every lane, so each multiply is a plain vector
/// multiply with a memory operand (no shuffles in the inner loop).
#[derive(Clone, Copy)]
struct Lanes<const C: usize> {
    b0: [f64; C],
    b1: [f64; C],
    b2: [f64; C],
    a1: [f64; C],
    a2: [f64; C],
}

impl<const C: usize> Lanes<C> {
    fn of(c: &BiquadCoefficients) -> Self {
        Lanes {
            b0: [c.b0; C],
            b1: [c.b1; C],
            b2: [c.b2; C],
            a1: [c.a1; C],
            a2: [c.a2; C],
        }
    }
}

#[inline(always)]
fn step<const C: usize>(
    c: &Lanes<C>,
    s1: &mut [f64; C],
    s2: &mut [f64; C],
    x: [f64; C],
) -> [f64; C] {
    let mut y = [0.0; C];
    for ch in 0..C {
        // Ordered so that the feedback path (y -> s1 -> y) is one multiply and
        // two adds long; the feed-forward products are off the critical path.
        y[ch] = c.b0[ch] * x[ch] + s1[ch];
        s1[ch] = (c.b1[ch] * x[ch] + s2[ch]) - c.a1[ch] * y[ch];
        s2[ch] = c.b2[ch] * x[ch] - c.a2[ch] * y[ch];
    }
    y
}

/// Runs `N` sections over the frames, skewed: in step `t`, section `k`
/// works on frame `t − k`, fed by what section `k − 1` produced in step
/// `t − 1`. The sections of one step are then independent, so their
/// arithmetic overlaps instead of waiting on each other; the skew is filled at
/// the start and drained at the end of the block, so nothing is delayed.
// Index loops mirror the skew's arithmetic (frame t − k) more clearly than iterators.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn run_group<const C: usize, const N: usize>(g: &mut [Section<C>; N], frames: &mut [[f64; C]]) {
    let c: [Lanes<C>; N] = std::array::from_fn(|k| Lanes::of(&g[k].c));
    let mut s1: [[f64; C]; N] = std::array::from_fn(|k| g[k].s1);
    let mut s2: [[f64; C]; N] = std::array::from_fn(|k| g[k].s2);
    let len = frames.len();
    if len < N {
        for f in frames.iter_mut() {
            let mut y = *f;
            for k in 0..N {
                y = step(&c[k], &mut s1[k], &mut s2[k], y);
            }
            *f = y;
        }
    } else {
        // pipe[k]: the latest output of section k (for frame t − 1 − k).
        let mut pipe = [[0.0f64; C]; N];
        // Fill: steps 0..N-1, where section k runs only once t ≥ k.
        for t in 0..N - 1 {
            for k in (0..=t).rev() {
                let x = if k == 0 { frames[t] } else { pipe[k - 1] };
                pipe[k] = step(&c[k], &mut s1[k], &mut s2[k], x);
            }
        }
        // Steady state: every section runs, no branches.
        for t in N - 1..len {
            let mut next = [[0.0f64; C]; N];
            next[0] = step(&c[0], &mut s1[0], &mut s2[0], frames[t]);
            for k in 1..N {
                next[k] = step(&c[k], &mut s1[k], &mut s2[k], pipe[k - 1]);
            }
            frames[t + 1 - N] = next[N - 1];
            pipe = next;
        }
        // Drain: steps len..len+N-1, where section k runs only for frames < len.
        for t in len..len + N - 1 {
            for k in (t + 1 - len..N).rev() {
                pipe[k] = step(&c[k], &mut s1[k], &mut s2[k], pipe[k - 1]);
            }
            frames[t + 1 - N] = pipe[N - 1];
        }
    }
    for k in 0..N {
        g[k].s1 = s1[k];
        g[k].s2 = s2[k];
    }
}
