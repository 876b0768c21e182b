//! Fitting the gains of a fixed set of filter shapes to target dB values at
//! chosen frequencies (Gauss-Newton on a small dense system). Used by the graphic
//! EQ (exact at the band centres) and by loudness (least squares over the ISO
//! 226 frequencies). Runs at design time, never while processing audio.

use crate::biquad::BiquadCoefficients;

/// A filter whose only free parameter is its gain in dB.
pub(crate) type Shape<'a> = &'a dyn Fn(f64) -> BiquadCoefficients;

/// Finds gains such that the summed dB response of `shapes` at `freqs` matches
/// `target` in the weighted least-squares sense. Starts from `start`.
pub(crate) fn fit_gains(
    fs: f64,
    shapes: &[Shape<'_>],
    freqs: &[f64],
    target: &[f64],
    weights: &[f64],
    start: &[f64],
    bound: f64,
) -> Vec<f64> {
    let n = shapes.len();
    let m = freqs.len();
    let mut g = start.to_vec();
    let eval = |g: &[f64]| -> Vec<f64> {
        let coeffs: Vec<BiquadCoefficients> = (0..n).map(|i| shapes[i](g[i])).collect();
        freqs
            .iter()
            .map(|&f| coeffs.iter().map(|c| c.magnitude_db(fs, f)).sum())
            .collect()
    };
    for _ in 0..30 {
        let r = eval(&g);
        let resid: Vec<f64> = (0..m).map(|j| target[j] - r[j]).collect();
        let worst = resid.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
        if worst < 1e-4 {
            break;
        }
        // Jacobian columns by central differences: each column depends only on
        // its own filter, so this costs 2n filter designs.
        let h = 1e-3;
        let mut jac = vec![vec![0.0; n]; m];
        for i in 0..n {
            let up = shapes[i](g[i] + h);
            let dn = shapes[i](g[i] - h);
            for j in 0..m {
                jac[j][i] =
                    (up.magnitude_db(fs, freqs[j]) - dn.magnitude_db(fs, freqs[j])) / (2.0 * h);
            }
        }
        // Normal equations JᵀWJ d = JᵀW r, with a touch of damping for safety.
        let mut a = vec![vec![0.0; n]; n];
        let mut b = vec![0.0; n];
        for j in 0..m {
            let w = weights[j];
            for p in 0..n {
                b[p] += w * jac[j][p] * resid[j];
                for q in 0..n {
                    a[p][q] += w * jac[j][p] * jac[j][q];
                }
            }
        }
        for (p, row) in a.iter_mut().enumerate() {
            row[p] += 1e-9 + row[p] * 1e-9;
        }
        let Some(d) = solve(a, b) else { break };
        for i in 0..n {
            g[i] = (g[i] + d[i]).clamp(-bound, bound);
        }
        // Least squares need not reach zero residual: stop once the step is negligible.
        if d.iter().all(|v| v.abs() < 1e-5) {
            break;
        }
    }
    g
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting.
pub(crate) fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        let (top, bottom) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (r, row) in bottom.iter_mut().enumerate() {
            let k = row[col] / pivot_row[col];
            if k != 0.0 {
                for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= k * p;
                }
                b[col + 1 + r] -= k * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|c| a[row][c] * x[c]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}
