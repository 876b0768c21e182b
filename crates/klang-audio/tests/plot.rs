//! Response plots: valid PNG and SVG files, atomic, with clear errors.

use klang_audio::{Curve, PlotError, plot_response};

fn curves() -> Vec<Curve> {
    let freqs: Vec<f64> = (0..400)
        .map(|i| 10.0 * 2400f64.powf(f64::from(i) / 399.0))
        .collect();
    // A mains high pass and a sub low pass at 80 Hz, second order, with a 63 Hz dip.
    let hp = |f: f64| -10.0 * (1.0 + (80.0 / f).powi(4)).log10();
    let lp = |f: f64| -10.0 * (1.0 + (f / 80.0).powi(4)).log10();
    let dip = |f: f64| -3.0 * (-(f / 63.0).log2().powi(2) * 8.0).exp();
    let mains = Curve {
        name: "L".into(),
        freqs_hz: freqs.clone(),
        magnitude_db: freqs.iter().map(|&f| hp(f) + dip(f)).collect(),
        phase_deg: freqs
            .iter()
            .map(|&f| 180.0 - 2.0 * (f / 80.0).atan().to_degrees())
            .collect(),
    };
    let right = Curve {
        name: "R".into(),
        ..mains.clone()
    };
    let sub = Curve {
        name: "SUB".into(),
        freqs_hz: freqs.clone(),
        magnitude_db: freqs.iter().map(|&f| lp(f) + dip(f)).collect(),
        phase_deg: freqs
            .iter()
            .map(|&f| -2.0 * (f / 80.0).atan().to_degrees())
            .collect(),
    };
    vec![mains, right, sub]
}

#[test]
fn png_and_svg_are_written() {
    let d = tempfile::tempdir().unwrap();
    let png = d.path().join("response.png");
    plot_response(&png, "klang: test response", 48_000, &curves()).unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // Width and height from the IHDR chunk.
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert!(w >= 1000 && h >= 600, "{w}x{h}");

    let svg = d.path().join("response.svg");
    plot_response(&svg, "klang: test response", 44_100, &curves()).unwrap();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..40]);
    for label in [
        "Gain (dB)",
        "Phase",
        "L = R",
        "SUB",
        "1k",
        "20k",
        "klang: test response",
    ] {
        assert!(text.contains(label), "the SVG lacks {label:?}");
    }
    // Only the two pictures, no temporary files left.
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
}

#[test]
fn unknown_extension_and_bad_curves_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let err = plot_response(&d.path().join("r.jpg"), "t", 48_000, &curves()).unwrap_err();
    assert!(matches!(err, PlotError::UnknownFormat { .. }));
    assert!(err.to_string().contains("r.jpg"));
    let mut bad = curves();
    bad[0].phase_deg.pop();
    let err = plot_response(&d.path().join("r.png"), "t", 48_000, &bad).unwrap_err();
    assert!(matches!(err, PlotError::BadCurve { .. }), "{err}");
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
}

#[test]
fn example_plot_for_eyes() {
    // Leaves a picture in the target dir for a human to look at; not checked.
    let out = std::env::var_os("KLANG_PLOT_EXAMPLE");
    if let Some(out) = out {
        plot_response(
            std::path::Path::new(&out),
            "klang: example",
            48_000,
            &curves(),
        )
        .unwrap();
    }
}
