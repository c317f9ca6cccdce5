//! The dot product of two f32 vectors, the distance kernel of the graph and the scans.
//!
//! The build spends a fifth of its time here. The portable loop keeps 16 partial sums so
//! the compiler vectorises it for baseline x86-64 (SSE2); on a CPU with AVX2 and FMA the
//! same loop is compiled a second time for those instructions and chosen once at run time.

use std::sync::OnceLock;

type DotFn = fn(&[f32], &[f32]) -> f32;

/// `a · b` over the shorter of the two.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    static CHOSEN: OnceLock<DotFn> = OnceLock::new();
    (CHOSEN.get_or_init(choose))(a, b)
}

fn choose() -> DotFn {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return dot_avx2;
        }
    }
    dot_portable
}

/// The loop both kernels share; `FUSED` uses fused multiply-adds (without FMA in the
/// target, `mul_add` would be a libm call).
#[inline(always)]
fn dot_lanes<const FUSED: bool>(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for i in 0..LANES {
            acc[i] = if FUSED {
                x[i].mul_add(y[i], acc[i])
            } else {
                acc[i] + x[i] * y[i]
            };
        }
    }
    let tail: f32 = ar.iter().zip(br).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes::<false>(a, b)
}

#[cfg(target_arch = "x86_64")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    #[target_feature(enable = "avx2,fma")]
    unsafe fn inner(a: &[f32], b: &[f32]) -> f32 {
        dot_lanes::<true>(a, b)
    }
    // SAFETY: `choose` returns this function only after detecting AVX2 and FMA.
    unsafe { inner(a, b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_matches_a_double_precision_sum() {
        for n in [0usize, 1, 7, 16, 17, 75, 128, 333] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 13 % 7) as f32 - 3.0) / 5.0).collect();
            let want: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            for got in [dot(&a, &b), dot_portable(&a, &b), dot_lanes::<true>(&a, &b)] {
                assert!((f64::from(got) - want).abs() < 1e-4, "{n}: {got} vs {want}");
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                assert!((f64::from(dot_avx2(&a, &b)) - want).abs() < 1e-4);
            }
        }
    }
}
