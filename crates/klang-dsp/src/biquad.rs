//! Second-order (and first-order) IIR sections: pure coefficient design per the
//! RBJ Audio EQ Cookbook, kept apart from the stateful processor.
//!
//! Design functions take the parameters and the sample rate and return
//! normalised coefficients (`a0 = 1`). They do not validate: the config layer
//! rejects out-of-range parameters before anything is designed, and
//! [`BiquadCoefficients::is_stable`] checks the result.

use std::f64::consts::PI;

/// A complex number, only as much as frequency responses need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Complex {
    /// Real part.
    pub re: f64,
    /// Imaginary part.
    pub im: f64,
}

impl Complex {
    /// The multiplicative identity.
    pub const ONE: Complex = Complex { re: 1.0, im: 0.0 };

    /// `r·e^{jθ}`.
    pub fn from_polar(r: f64, theta: f64) -> Complex {
        Complex {
            re: r * theta.cos(),
            im: r * theta.sin(),
        }
    }
    /// Multiplication by a real.
    #[must_use]
    pub fn scale(self, k: f64) -> Complex {
        Complex {
            re: self.re * k,
            im: self.im * k,
        }
    }
    /// Magnitude.
    pub fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }
    /// Magnitude in dB.
    pub fn db(self) -> f64 {
        20.0 * self.abs().log10()
    }
    /// Phase in radians.
    pub fn arg(self) -> f64 {
        self.im.atan2(self.re)
    }
}

impl std::ops::Mul for Complex {
    type Output = Complex;
    fn mul(self, o: Complex) -> Complex {
        Complex {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }
}

impl std::ops::Add for Complex {
    type Output = Complex;
    fn add(self, o: Complex) -> Complex {
        Complex {
            re: self.re + o.re,
            im: self.im + o.im,
        }
    }
}

impl std::ops::Div for Complex {
    type Output = Complex;
    fn div(self, o: Complex) -> Complex {
        let d = o.re * o.re + o.im * o.im;
        Complex {
            re: (self.re * o.re + self.im * o.im) / d,
            im: (self.im * o.re - self.re * o.im) / d,
        }
    }
}

/// dB to linear amplitude.
pub fn db_to_gain(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// Linear amplitude to dB.
pub fn gain_to_db(g: f64) -> f64 {
    20.0 * g.log10()
}

/// Normalised biquad coefficients: `H(z) = (b0 + b1 z⁻¹ + b2 z⁻²) / (1 + a1 z⁻¹ + a2 z⁻²)`.
/// First-order sections have `b2 = a2 = 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BiquadCoefficients {
    /// Feed-forward, current sample.
    pub b0: f64,
    /// Feed-forward, one sample back.
    pub b1: f64,
    /// Feed-forward, two samples back.
    pub b2: f64,
    /// Feedback, one sample back (sign as in the transfer function's denominator).
    pub a1: f64,
    /// Feedback, two samples back.
    pub a2: f64,
}

/// Everything the cookbook needs about one frequency at one rate.
struct Omega {
    cos: f64,
    sin: f64,
}

fn omega(fs: f64, f0: f64) -> Omega {
    let w0 = 2.0 * PI * f0 / fs;
    Omega {
        cos: w0.cos(),
        sin: w0.sin(),
    }
}

impl BiquadCoefficients {
    /// Passes everything unchanged.
    pub const IDENTITY: BiquadCoefficients = BiquadCoefficients {
        b0: 1.0,
        b1: 0.0,
        b2: 0.0,
        a1: 0.0,
        a2: 0.0,
    };

    /// Divides everything by `a0`.
    fn normalised(b0: f64, b1: f64, b2: f64, a0: f64, a1: f64, a2: f64) -> Self {
        BiquadCoefficients {
            b0: b0 / a0,
            b1: b1 / a0,
            b2: b2 / a0,
            a1: a1 / a0,
            a2: a2 / a0,
        }
    }

    /// A plain gain.
    pub fn gain(db: f64) -> Self {
        BiquadCoefficients {
            b0: db_to_gain(db),
            ..Self::IDENTITY
        }
    }

    /// RBJ peaking EQ: `gain_db` at `f0`, bandwidth from `q`.
    pub fn peak(fs: f64, f0: f64, q: f64, gain_db: f64) -> Self {
        let a = 10f64.powf(gain_db / 40.0);
        let w = omega(fs, f0);
        let alpha = w.sin / (2.0 * q);
        Self::normalised(
            1.0 + alpha * a,
            -2.0 * w.cos,
            1.0 - alpha * a,
            1.0 + alpha / a,
            -2.0 * w.cos,
            1.0 - alpha / a,
        )
    }

    fn shelf(
        fs: f64,
        f0: f64,
        alpha_of: impl Fn(f64, f64) -> f64,
        gain_db: f64,
        low: bool,
    ) -> Self {
        let a = 10f64.powf(gain_db / 40.0);
        let w = omega(fs, f0);
        let alpha = alpha_of(a, w.sin);
        let sa = 2.0 * a.sqrt() * alpha;
        let (c, ap, am) = (w.cos, a + 1.0, a - 1.0);
        if low {
            Self::normalised(
                a * (ap - am * c + sa),
                2.0 * a * (am - ap * c),
                a * (ap - am * c - sa),
                ap + am * c + sa,
                -2.0 * (am + ap * c),
                ap + am * c - sa,
            )
        } else {
            Self::normalised(
                a * (ap + am * c + sa),
                -2.0 * a * (am + ap * c),
                a * (ap + am * c - sa),
                ap - am * c + sa,
                2.0 * (am - ap * c),
                ap - am * c - sa,
            )
        }
    }

    /// RBJ low shelf with its midpoint (half the gain in dB) at `f0`, steepness from `q`.
    pub fn low_shelf(fs: f64, f0: f64, q: f64, gain_db: f64) -> Self {
        Self::shelf(fs, f0, |_, sin| sin / (2.0 * q), gain_db, true)
    }
    /// RBJ high shelf, see [`Self::low_shelf`].
    pub fn high_shelf(fs: f64, f0: f64, q: f64, gain_db: f64) -> Self {
        Self::shelf(fs, f0, |_, sin| sin / (2.0 * q), gain_db, false)
    }
    /// RBJ low shelf with the cookbook's slope `S` (1 = steepest without overshoot).
    pub fn low_shelf_slope(fs: f64, f0: f64, slope: f64, gain_db: f64) -> Self {
        Self::shelf(fs, f0, |a, sin| shelf_alpha(a, sin, slope), gain_db, true)
    }
    /// RBJ high shelf with slope `S`.
    pub fn high_shelf_slope(fs: f64, f0: f64, slope: f64, gain_db: f64) -> Self {
        Self::shelf(fs, f0, |a, sin| shelf_alpha(a, sin, slope), gain_db, false)
    }

    /// RBJ second-order low pass (Q = 1/√2 is Butterworth).
    pub fn lowpass(fs: f64, f0: f64, q: f64) -> Self {
        let w = omega(fs, f0);
        let alpha = w.sin / (2.0 * q);
        let b = (1.0 - w.cos) / 2.0;
        Self::normalised(b, 2.0 * b, b, 1.0 + alpha, -2.0 * w.cos, 1.0 - alpha)
    }
    /// RBJ second-order high pass.
    pub fn highpass(fs: f64, f0: f64, q: f64) -> Self {
        let w = omega(fs, f0);
        let alpha = w.sin / (2.0 * q);
        let b = (1.0 + w.cos) / 2.0;
        Self::normalised(b, -2.0 * b, b, 1.0 + alpha, -2.0 * w.cos, 1.0 - alpha)
    }
    /// RBJ band pass with 0 dB gain at `f0` (constant peak gain form).
    pub fn bandpass(fs: f64, f0: f64, q: f64) -> Self {
        let w = omega(fs, f0);
        let alpha = w.sin / (2.0 * q);
        Self::normalised(alpha, 0.0, -alpha, 1.0 + alpha, -2.0 * w.cos, 1.0 - alpha)
    }
    /// RBJ notch.
    pub fn notch(fs: f64, f0: f64, q: f64) -> Self {
        let w = omega(fs, f0);
        let alpha = w.sin / (2.0 * q);
        Self::normalised(
            1.0,
            -2.0 * w.cos,
            1.0,
            1.0 + alpha,
            -2.0 * w.cos,
            1.0 - alpha,
        )
    }
    /// RBJ second-order all pass (phase −180° at `f0`).
    pub fn allpass(fs: f64, f0: f64, q: f64) -> Self {
        let w = omega(fs, f0);
        let alpha = w.sin / (2.0 * q);
        Self::normalised(
            1.0 - alpha,
            -2.0 * w.cos,
            1.0 + alpha,
            1.0 + alpha,
            -2.0 * w.cos,
            1.0 - alpha,
        )
    }

    /// `tan(w0/2)`: the bilinear transform's prewarped frequency.
    fn k(fs: f64, f0: f64) -> f64 {
        (PI * f0 / fs).tan()
    }
    /// First-order low pass (6 dB/octave, −3 dB at `f0`).
    pub fn lowpass1(fs: f64, f0: f64) -> Self {
        let k = Self::k(fs, f0);
        Self::normalised(k, k, 0.0, k + 1.0, k - 1.0, 0.0)
    }
    /// First-order high pass.
    pub fn highpass1(fs: f64, f0: f64) -> Self {
        let k = Self::k(fs, f0);
        Self::normalised(1.0, -1.0, 0.0, k + 1.0, k - 1.0, 0.0)
    }
    /// First-order all pass (phase −90° at `f0`).
    pub fn allpass1(fs: f64, f0: f64) -> Self {
        let k = Self::k(fs, f0);
        Self::normalised(k - 1.0, k + 1.0, 0.0, k + 1.0, k - 1.0, 0.0)
    }
    /// First-order low shelf: `gain_db` at DC, 0 dB at Nyquist, half the gain at `f0`.
    pub fn low_shelf1(fs: f64, f0: f64, gain_db: f64) -> Self {
        let k = Self::k(fs, f0);
        let r = db_to_gain(gain_db).sqrt();
        Self::normalised(k * r + 1.0, k * r - 1.0, 0.0, k / r + 1.0, k / r - 1.0, 0.0)
    }
    /// First-order high shelf: 0 dB at DC, `gain_db` at Nyquist, half the gain at `f0`.
    pub fn high_shelf1(fs: f64, f0: f64, gain_db: f64) -> Self {
        let k = Self::k(fs, f0);
        let g = db_to_gain(gain_db);
        let r = g.sqrt();
        Self::normalised(
            g * (k / r + 1.0),
            g * (k / r - 1.0),
            0.0,
            k * r + 1.0,
            k * r - 1.0,
            0.0,
        )
    }

    /// The complex response at `f` Hz.
    pub fn response(&self, fs: f64, f: f64) -> Complex {
        let w = 2.0 * PI * f / fs;
        let z1 = Complex::from_polar(1.0, -w);
        let z2 = Complex::from_polar(1.0, -2.0 * w);
        let num = Complex {
            re: self.b0,
            im: 0.0,
        } + z1.scale(self.b1)
            + z2.scale(self.b2);
        let den = Complex::ONE + z1.scale(self.a1) + z2.scale(self.a2);
        num / den
    }

    /// Magnitude response in dB at `f` Hz.
    pub fn magnitude_db(&self, fs: f64, f: f64) -> f64 {
        self.response(fs, f).db()
    }

    /// Both poles strictly inside the unit circle (the stability triangle), and
    /// every coefficient finite.
    pub fn is_stable(&self) -> bool {
        let finite = [self.b0, self.b1, self.b2, self.a1, self.a2]
            .iter()
            .all(|c| c.is_finite());
        finite && self.a2.abs() < 1.0 && self.a1.abs() < 1.0 + self.a2
    }
}

/// The cookbook's shelf `alpha` from slope `S`.
fn shelf_alpha(a: f64, sin: f64, slope: f64) -> f64 {
    sin / 2.0 * ((a + 1.0 / a) * (1.0 / slope - 1.0) + 2.0).max(0.0).sqrt()
}

/// Is slope `S` valid for a shelf of `gain_db`? (The square root's argument must be positive, else the poles reach the unit circle.)
pub fn shelf_slope_valid(slope: f64, gain_db: f64) -> bool {
    let a = 10f64.powf(gain_db / 40.0);
    slope > 0.0 && (a + 1.0 / a) * (1.0 / slope - 1.0) + 2.0 > 1e-9
}

/// Q of a peaking filter whose bandwidth is `octaves` (cookbook relation, analog prototype).
pub fn q_from_bandwidth(octaves: f64) -> f64 {
    let p = 2f64.powf(octaves);
    p.sqrt() / (p - 1.0)
}

/// Which side of a crossover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassBand {
    /// Keeps what is below the corner.
    Low,
    /// Keeps what is above the corner.
    High,
}

/// Butterworth of `order` (1..=8) at `f0` as a cascade of sections (−3 dB at `f0`).
pub fn butterworth(fs: f64, f0: f64, order: usize, band: PassBand) -> Vec<BiquadCoefficients> {
    let mut out = Vec::with_capacity(order.div_ceil(2));
    for k in 0..order / 2 {
        let theta = PI * (2 * k + 1) as f64 / (2 * order) as f64;
        let q = 1.0 / (2.0 * theta.sin());
        out.push(match band {
            PassBand::Low => BiquadCoefficients::lowpass(fs, f0, q),
            PassBand::High => BiquadCoefficients::highpass(fs, f0, q),
        });
    }
    if order % 2 == 1 {
        out.push(match band {
            PassBand::Low => BiquadCoefficients::lowpass1(fs, f0),
            PassBand::High => BiquadCoefficients::highpass1(fs, f0),
        });
    }
    out
}

/// Linkwitz-Riley of `order` (2, 4 or 8): a Butterworth of half the order, squared
/// (−6 dB at `f0`; low and high parts sum to an all pass, LR2 with one side inverted).
pub fn linkwitz_riley(fs: f64, f0: f64, order: usize, band: PassBand) -> Vec<BiquadCoefficients> {
    let half = butterworth(fs, f0, order / 2, band);
    half.iter().chain(half.iter()).copied().collect()
}

/// A single section with state, for one channel. Transposed direct form II in f64:
/// two state values, and f64's 52-bit mantissa makes the form's noise and
/// coefficient sensitivity irrelevant at audio levels (DF-I's advantage is with
/// fixed point / f32). See [`crate::cascade`] for the fast multi-channel version.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Biquad {
    /// The section's design.
    pub coeffs: BiquadCoefficients,
    s1: f64,
    s2: f64,
}

impl Biquad {
    /// A section at rest.
    pub fn new(coeffs: BiquadCoefficients) -> Self {
        Biquad {
            coeffs,
            s1: 0.0,
            s2: 0.0,
        }
    }
    /// One sample.
    #[inline]
    pub fn process(&mut self, x: f64) -> f64 {
        let c = &self.coeffs;
        let y = c.b0 * x + self.s1;
        self.s1 = (c.b1 * x + self.s2) - c.a1 * y;
        self.s2 = c.b2 * x - c.a2 * y;
        y
    }
    /// Processes a block in place.
    pub fn process_block(&mut self, samples: &mut [f64]) {
        for s in samples.iter_mut() {
            *s = self.process(*s);
        }
        self.flush_denormals();
    }
    /// Sets state values too small to matter (below −600 dB) to zero, so decaying
    /// state never reaches the subnormal range, which is slow on x86.
    pub fn flush_denormals(&mut self) {
        if self.s1.abs() < 1e-30 {
            self.s1 = 0.0;
        }
        if self.s2.abs() < 1e-30 {
            self.s2 = 0.0;
        }
    }
    /// Forgets the past.
    pub fn reset(&mut self) {
        self.s1 = 0.0;
        self.s2 = 0.0;
    }
}
