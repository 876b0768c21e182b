//! Response plots: magnitude (upper panel) and phase (lower panel) per output over a
//! logarithmic frequency axis, drawn with an embedded font.

use crate::PlotError;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

/// DejaVu Sans (Bitstream Vera licence, see `assets/DejaVuSans.LICENSE`), embedded so
/// plots look the same everywhere and need no fonts on the machine.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 880;
const LOWEST_HZ: f64 = 10.0;
const HIGHEST_HZ: f64 = 20_000.0;

/// One output's response, as computed by the DSP.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// The output's name as shown in the legend ("L", "R", "SUB").
    pub name: String,
    /// Frequencies in Hz, ascending.
    pub freqs_hz: Vec<f64>,
    /// Gain in dB at each frequency.
    pub magnitude_db: Vec<f64>,
    /// Phase in degrees at each frequency (any range; it is wrapped to ±180°).
    pub phase_deg: Vec<f64>,
}

/// The image format, chosen by the target's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlotFormat {
    Png,
    Svg,
}

impl PlotFormat {
    /// `Some` for `*.png` and `*.svg` (any case), `None` otherwise.
    pub fn from_path(path: &Path) -> Option<PlotFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "png" => Some(PlotFormat::Png),
            "svg" => Some(PlotFormat::Svg),
            _ => None,
        }
    }
}

/// Draws the curves to `path` (`.png` or `.svg`), atomically: the target changes only
/// when the whole picture has been written.
///
/// The frequency axis runs from 10 Hz to the lower of 20 kHz and half `sample_rate`.
/// Outputs with identical responses share one line and one legend entry ("L = R").
pub fn plot_response(
    path: &Path,
    title: &str,
    sample_rate: u32,
    curves: &[Curve],
) -> Result<(), PlotError> {
    let format = PlotFormat::from_path(path).ok_or_else(|| PlotError::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    if curves.is_empty() {
        return Err(PlotError::NoCurves {
            path: path.to_path_buf(),
        });
    }
    for c in curves {
        let n = c.freqs_hz.len();
        if n < 2 || c.magnitude_db.len() != n || c.phase_deg.len() != n {
            return Err(PlotError::BadCurve {
                path: path.to_path_buf(),
                name: c.name.clone(),
                detail: format!(
                    "{} frequencies, {} magnitudes, {} phases (need at least 2 of each, equally many)",
                    n,
                    c.magnitude_db.len(),
                    c.phase_deg.len()
                ),
            });
        }
    }
    register_font();
    let draw_err = |detail: String| PlotError::Draw {
        path: path.to_path_buf(),
        detail,
    };
    let groups = merge_identical(curves);
    let nyquist = f64::from(sample_rate) / 2.0;
    let hi = HIGHEST_HZ.min(nyquist).max(LOWEST_HZ * 2.0);

    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = if format == PlotFormat::Png {
        ".png"
    } else {
        ".svg"
    };
    if !dir.is_dir() {
        return Err(draw_err(format!(
            "the directory {} does not exist",
            dir.display()
        )));
    }
    // The bitmap encoder picks the format from the extension, so the temporary file
    // keeps it; the leading dot hides it while it is incomplete.
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(&format!(".part{ext}"))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|e| {
            draw_err(format!(
                "cannot create a file in {}: {}",
                dir.display(),
                e.kind()
            ))
        })?
        .into_temp_path();
    match format {
        PlotFormat::Png => {
            let root = BitMapBackend::new(&temp, (WIDTH, HEIGHT)).into_drawing_area();
            draw(&root, title, sample_rate, hi, &groups).map_err(draw_err)?;
            root.present().map_err(|e| draw_err(e.to_string()))?;
        }
        PlotFormat::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
                draw(&root, title, sample_rate, hi, &groups).map_err(draw_err)?;
                root.present().map_err(|e| draw_err(e.to_string()))?;
            }
            std::fs::write(&temp, svg).map_err(|e| draw_err(e.to_string()))?;
        }
    }
    temp.persist(path)
        .map_err(|e| draw_err(format!("cannot rename into place: {}", e.error)))?;
    Ok(())
}

fn register_font() {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        // The font is compiled in and known to parse (a unit test checks it), so a
        // failure here is a build defect, not a run-time condition.
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the embedded font does not parse"));
    });
}

/// A line to draw: one or more outputs with the same response.
#[derive(Debug)]
struct Group<'a> {
    label: String,
    curve: &'a Curve,
}

fn merge_identical(curves: &[Curve]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for c in curves {
        let same = |g: &Group<'_>| {
            g.curve.freqs_hz == c.freqs_hz
                && close(&g.curve.magnitude_db, &c.magnitude_db)
                && close(&g.curve.phase_deg, &c.phase_deg)
        };
        match groups.iter_mut().find(|g| same(g)) {
            Some(g) => {
                g.label.push_str(" = ");
                g.label.push_str(&c.name);
            }
            None => groups.push(Group {
                label: c.name.clone(),
                curve: c,
            }),
        }
    }
    groups
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (x - y).abs() < 1e-6 || (x.is_nan() && y.is_nan()))
}

/// Colours per output name; the usual L blue, R red, SUB green, then a palette.
fn colour(label: &str, index: usize) -> RGBColor {
    const PALETTE: [RGBColor; 5] = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0xff, 0x7f, 0x0e),
    ];
    match label.split(" = ").next().unwrap_or(label) {
        "L" => PALETTE[0],
        "R" => PALETTE[1],
        "SUB" => PALETTE[2],
        _ => PALETTE[(index + 3) % PALETTE.len()],
    }
}

fn hz_label(f: f64) -> String {
    if f >= 1000.0 {
        let k = f / 1000.0;
        if (k - k.round()).abs() < 1e-9 {
            format!("{}k", k.round())
        } else {
            format!("{k:.1}k")
        }
    } else {
        format!("{}", f.round())
    }
}

/// Frequencies with labels: 1-2-5 per decade, the way audio plots are read.
fn key_frequencies(hi: f64) -> Vec<f64> {
    let mut keys = Vec::new();
    let mut decade = 10.0;
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let f = decade * m;
            if (LOWEST_HZ..=hi * 1.000_001).contains(&f) {
                keys.push(f);
            }
        }
        decade *= 10.0;
    }
    keys
}

/// Unlabelled grid lines at every integer multiple within each decade.
fn light_frequencies(hi: f64) -> Vec<f64> {
    let mut lines = Vec::new();
    let mut decade = 10.0;
    while decade <= hi {
        for m in 1..10 {
            let f = decade * f64::from(m);
            if (LOWEST_HZ..=hi).contains(&f) {
                lines.push(f);
            }
        }
        decade *= 10.0;
    }
    lines
}

/// Line width of the `index`-th curve: the first is drawn wider, so where a later
/// curve lies exactly on it (L under R when only a trim differs) both stay visible.
fn width(index: usize, base: u32) -> u32 {
    if index == 0 { base + 2 } else { base }
}

/// The corner of the magnitude panel that the curves cross least, for the legend.
fn legend_corner(groups: &[Group<'_>], hi: f64, bottom: f64, top: f64) -> SeriesLabelPosition {
    // The legend covers roughly the outer quarter of the frequency axis (in octaves)
    // and a third of the dB range.
    let span = (hi / LOWEST_HZ).log2();
    let right = |f: f64| (hi / f).log2() < span * 0.25;
    let left = |f: f64| (f / LOWEST_HZ).log2() < span * 0.25;
    let upper = |m: f64| m > top - (top - bottom) / 3.0;
    let lower = |m: f64| m < bottom + (top - bottom) / 3.0;
    let count = |in_x: &dyn Fn(f64) -> bool, in_y: &dyn Fn(f64) -> bool| {
        groups
            .iter()
            .flat_map(|g| g.curve.freqs_hz.iter().zip(&g.curve.magnitude_db))
            .filter(|(f, m)| (bottom..=top).contains(*m) && in_x(**f) && in_y(**m))
            .count()
    };
    // In order of preference: where readers look first.
    let candidates = [
        (SeriesLabelPosition::UpperRight, count(&right, &upper)),
        (SeriesLabelPosition::LowerRight, count(&right, &lower)),
        (SeriesLabelPosition::LowerLeft, count(&left, &lower)),
        (SeriesLabelPosition::UpperLeft, count(&left, &upper)),
    ];
    let best = candidates.iter().map(|c| c.1).min().unwrap_or(0);
    candidates
        .into_iter()
        .find(|c| c.1 == best)
        .map_or(SeriesLabelPosition::UpperRight, |c| c.0)
}

/// A dB range that shows every curve in the band with some headroom, in 6 dB steps,
/// at least 24 dB tall and at most 60 dB (steep filter skirts are cut off at the bottom).
fn magnitude_range(groups: &[Group<'_>], hi: f64) -> (f64, f64) {
    let values = groups.iter().flat_map(|g| {
        g.curve
            .freqs_hz
            .iter()
            .zip(&g.curve.magnitude_db)
            .filter(move |(f, m)| (LOWEST_HZ..=hi).contains(*f) && m.is_finite())
            .map(|(_, m)| *m)
    });
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, up), m| {
        (lo.min(m), up.max(m))
    });
    if !min.is_finite() {
        return (-24.0, 12.0);
    }
    let top = ((max + 3.0) / 6.0).ceil() * 6.0;
    let bottom = (((min - 3.0) / 6.0).floor() * 6.0).max(top - 60.0);
    let bottom = bottom.min(top - 24.0);
    (bottom, top)
}

/// A linear axis with labels exactly where we want them (every 6 dB, every 45°);
/// plotters' own linear axis only picks 1-2-5 steps.
#[derive(Debug, Clone)]
struct TickedAxis {
    range: std::ops::Range<f64>,
    ticks: Vec<f64>,
}

impl TickedAxis {
    fn new(range: std::ops::Range<f64>, ticks: Vec<f64>) -> Self {
        TickedAxis { range, ticks }
    }
}

impl Ranged for TickedAxis {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = (value - self.range.start) / (self.range.end - self.range.start);
        let pixels = f64::from(limit.1 - limit.0);
        limit.0 + (share * pixels).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

/// Labelled dB values: every 6 dB, or every 3 dB on a short axis.
fn db_ticks(bottom: f64, top: f64) -> Vec<f64> {
    let step = if top - bottom > 30.0 { 6.0 } else { 3.0 };
    let n = ((top - bottom) / step).round() as i32;
    (0..=n).map(|k| bottom + f64::from(k) * step).collect()
}

fn wrap_degrees(p: f64) -> f64 {
    (p + 180.0).rem_euclid(360.0) - 180.0
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    sample_rate: u32,
    hi: f64,
    groups: &[Group<'_>],
) -> Result<(), String> {
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    root.fill(&WHITE).map_err(e)?;
    let root = root
        .titled(title, (FAMILY, 30).into_font().color(&BLACK))
        .map_err(e)?;
    let (upper, lower) = root.split_vertically((HEIGHT as f64 * 0.58) as u32);
    let grid_bold = RGBColor(0xb0, 0xb0, 0xb0);
    let grid_light = RGBColor(0xe4, 0xe4, 0xe4);
    let label_font = (FAMILY, 17).into_font();
    let desc_font = (FAMILY, 19).into_font();
    let x_keys = key_frequencies(hi);
    let x_light = light_frequencies(hi);
    let x_range = || (LOWEST_HZ..hi).log_scale().with_key_points(x_keys.clone());

    // Magnitude.
    let (bottom, top) = magnitude_range(groups, hi);
    let mut mag = ChartBuilder::on(&upper)
        .margin_left(20)
        .margin_right(30)
        .margin_top(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(
            x_range(),
            TickedAxis::new(bottom..top, db_ticks(bottom, top)),
        )
        .map_err(e)?;
    mag.configure_mesh()
        .y_label_formatter(&|v| format!("{v:+.0}").replace("+0", "0"))
        .x_label_formatter(&|f| hz_label(*f))
        .y_desc("Gain (dB)")
        .axis_desc_style(desc_font.clone())
        .label_style(label_font.clone())
        .bold_line_style(grid_bold)
        .light_line_style(grid_light)
        .draw()
        .map_err(e)?;
    // Unlabelled lines at 30, 40, 300, ... like printed log paper.
    for &f in &x_light {
        mag.draw_series(std::iter::once(PathElement::new(
            vec![(f, bottom), (f, top)],
            grid_light,
        )))
        .map_err(e)?;
    }
    for (i, g) in groups.iter().enumerate() {
        let c = colour(&g.label, i);
        // Where a filter skirt falls below the panel the line ends at the bottom edge
        // rather than running along it, which would read as a floor.
        let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        let mut below = false;
        for (&f, &m) in g.curve.freqs_hz.iter().zip(&g.curve.magnitude_db) {
            if !(LOWEST_HZ..=hi).contains(&f) || !m.is_finite() {
                continue;
            }
            let now_below = m < bottom;
            let current = segments.last_mut().expect("never empty");
            if now_below && below {
                if current.len() > 1 {
                    segments.push(Vec::new());
                }
                segments.last_mut().expect("never empty").clear();
            }
            segments
                .last_mut()
                .expect("never empty")
                .push((f, m.clamp(bottom, top)));
            below = now_below;
        }
        let mut first = true;
        for s in segments.into_iter().filter(|s| s.len() > 1) {
            let series = mag
                .draw_series(LineSeries::new(s, c.stroke_width(width(i, 3))))
                .map_err(e)?;
            if std::mem::take(&mut first) {
                series.label(g.label.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 28, y)], c.stroke_width(4))
                });
            }
        }
    }
    mag.configure_series_labels()
        .position(legend_corner(groups, hi, bottom, top))
        .label_font(label_font.clone())
        .background_style(WHITE.mix(0.9))
        .border_style(grid_bold)
        .margin(12)
        .draw()
        .map_err(e)?;

    // Phase.
    let mut phase = ChartBuilder::on(&lower)
        .margin_left(20)
        .margin_right(30)
        .margin_top(16)
        .margin_bottom(10)
        .x_label_area_size(55)
        .y_label_area_size(70)
        .build_cartesian_2d(
            x_range(),
            TickedAxis::new(
                -180.0..180.0,
                (-4..=4).map(|k| f64::from(k) * 45.0).collect(),
            ),
        )
        .map_err(e)?;
    phase
        .configure_mesh()
        .y_label_formatter(&|v| format!("{v:.0}°"))
        .x_label_formatter(&|f| hz_label(*f))
        .x_desc(format!(
            "Frequency (Hz), sample rate {} kHz",
            hz_label(f64::from(sample_rate)).trim_end_matches('k')
        ))
        .y_desc("Phase")
        .axis_desc_style(desc_font)
        .label_style(label_font)
        .bold_line_style(grid_bold)
        .light_line_style(grid_light)
        .draw()
        .map_err(e)?;
    for &f in &x_light {
        phase
            .draw_series(std::iter::once(PathElement::new(
                vec![(f, -180.0), (f, 180.0)],
                grid_light,
            )))
            .map_err(e)?;
    }
    for (i, g) in groups.iter().enumerate() {
        let c = colour(&g.label, i);
        // Break the line where the wrapped phase jumps, instead of drawing a vertical
        // stroke across the panel.
        let mut segment: Vec<(f64, f64)> = Vec::new();
        let mut segments = Vec::new();
        // Where the output is below the magnitude panel it is practically silent and
        // its phase means nothing (a delayed sub's phase spins through ±180° dozens of
        // times up there): leave those stretches out.
        let points = g
            .curve
            .freqs_hz
            .iter()
            .zip(&g.curve.phase_deg)
            .zip(&g.curve.magnitude_db);
        for ((&f, &p), &m) in points {
            if !(LOWEST_HZ..=hi).contains(&f) || !p.is_finite() || m.is_nan() || m < bottom {
                segments.push(std::mem::take(&mut segment));
                continue;
            }
            let p = wrap_degrees(p);
            if let Some(&(_, last)) = segment.last() {
                if (p - last).abs() > 180.0 {
                    segments.push(std::mem::take(&mut segment));
                }
            }
            segment.push((f, p));
        }
        segments.push(segment);
        for s in segments.into_iter().filter(|s| s.len() > 1) {
            phase
                .draw_series(LineSeries::new(s, c.stroke_width(width(i, 2))))
                .map_err(e)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_font_parses() {
        register_font();
    }

    #[test]
    fn frequency_labels_read_like_audio_plots() {
        assert_eq!(hz_label(20.0), "20");
        assert_eq!(hz_label(1000.0), "1k");
        assert_eq!(hz_label(20_000.0), "20k");
        assert_eq!(hz_label(1500.0), "1.5k");
        assert_eq!(
            key_frequencies(20_000.0)
                .iter()
                .map(|&f| hz_label(f))
                .collect::<Vec<_>>(),
            [
                "10", "20", "50", "100", "200", "500", "1k", "2k", "5k", "10k", "20k"
            ]
        );
    }

    #[test]
    fn legend_avoids_the_curves() {
        let freqs: Vec<f64> = (0..100)
            .map(|i| 10.0 * 2000f64.powf(f64::from(i) / 99.0))
            .collect();
        let flat = Curve {
            name: "L".into(),
            magnitude_db: vec![0.0; 100],
            phase_deg: vec![0.0; 100],
            freqs_hz: freqs,
        };
        let groups = merge_identical(std::slice::from_ref(&flat));
        let (bottom, top) = magnitude_range(&groups, 20_000.0);
        assert!(matches!(
            legend_corner(&groups, 20_000.0, bottom, top),
            SeriesLabelPosition::LowerRight
        ));
    }

    #[test]
    fn phase_wraps_into_plus_minus_180() {
        assert_eq!(wrap_degrees(190.0), -170.0);
        assert_eq!(wrap_degrees(-540.0), -180.0);
        assert_eq!(wrap_degrees(45.0), 45.0);
    }
}
