//! musicnn (Pons & Serra, 2019) over `ndarray`: the network of `musicnn.models.build_musicnn`
//! (front-end of timbral and temporal convolutions, a dense mid-end with residual
//! connections, temporal pooling and two dense layers), inference only, with the weights
//! converted from the TF1 checkpoints by `embeddings/models/convert.py`.
//!
//! Every convolution is one matrix product (`ndarray`'s `general_mat_mul`, matrixmultiply's
//! GEMM) over an unfolded input, into buffers a [`Workspace`] keeps between calls. Batch normalisation (after the ReLU, as in the original) is a
//! per-channel scale and shift computed once at load.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use safetensors::SafeTensors;

use super::mel::BANDS;

/// Frames per input patch (3 s at 16 kHz, hop 256).
pub const PATCH: usize = 187;
/// Width of the penultimate layer (the learned embedding).
pub const PENULTIMATE: usize = 200;
/// Tags each model scores.
pub const TAGS: usize = 50;
/// `tf.compat.v1.layers.batch_normalization`'s default epsilon.
const BN_EPSILON: f32 = 1e-3;

/// Why a weights file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("weights file: {0}")]
    Format(String),
    #[error("tensor {name}: shape {got:?}, expected {want:?}")]
    Shape {
        name: String,
        got: Vec<usize>,
        want: Vec<usize>,
    },
}

/// Batch normalisation folded into `x * scale + shift`.
struct Norm {
    scale: Array1<f32>,
    shift: Array1<f32>,
}

/// A convolution as a matrix over its unfolded input: `kernel` is (inputs, filters).
struct Conv {
    kernel: Array2<f32>,
    bias: Array1<f32>,
    norm: Norm,
}

impl Conv {
    /// ReLU(unfolded x kernel + bias), normalised, written into `out` (a buffer kept
    /// between calls, so the megabytes of a product are not fresh pages every time).
    fn apply<'a>(&self, unfolded: ArrayView2<f32>, out: &'a mut Vec<f32>) -> ArrayView2<'a, f32> {
        let (rows, width) = (unfolded.nrows(), self.kernel.ncols());
        if out.len() < rows * width {
            out.resize(rows * width, 0.0);
        }
        let out = &mut out[..rows * width];
        {
            let mut product =
                ArrayViewMut2::from_shape((rows, width), &mut *out).expect("sized above");
            // beta = 0: the product overwrites whatever the buffer held.
            general_mat_mul(1.0, &unfolded, &self.kernel, 0.0, &mut product);
        }
        let (bias, scale, shift) = (
            self.bias.as_slice().expect("owned"),
            self.norm.scale.as_slice().expect("owned"),
            self.norm.shift.as_slice().expect("owned"),
        );
        for row in out.chunks_exact_mut(width) {
            for (((v, b), s), h) in row.iter_mut().zip(bias).zip(scale).zip(shift) {
                *v = (*v + b).max(0.0) * s + h;
            }
        }
        ArrayView2::from_shape((rows, width), &*out).expect("sized above")
    }
}

/// Buffers one thread reuses across layers, patches and models: the unfolded input of a
/// convolution and its product (up to ~12 MB each).
#[derive(Default)]
pub struct Workspace {
    unfolded: Vec<f32>,
    product: Vec<f32>,
}

/// One of the two timbral convolutions: `height` frames x `width` mel bands, max-pooled
/// over frequency.
struct Timbral {
    width: usize,
    conv: Conv,
}

/// One of the three temporal convolutions: `length` frames x one band, 'same' padding,
/// max-pooled over frequency.
struct Temporal {
    length: usize,
    conv: Conv,
}

/// The mid-end convolutions are 7 frames high and span all their input's features.
const MID_HEIGHT: usize = 7;
/// The timbral convolutions are 7 frames high too.
const TIMBRAL_HEIGHT: usize = 7;

/// One loaded model.
pub struct Musicnn {
    input: (f32, f32),
    timbral: [Timbral; 2],
    temporal: [Temporal; 3],
    mid: [Conv; 3],
    pool_norm: Norm,
    dense: (Array2<f32>, Array1<f32>),
    dense_norm: Norm,
    out: (Array2<f32>, Array1<f32>),
    /// The labels, in output order (from the file's metadata).
    pub labels: Vec<String>,
}

/// What the model says about one patch.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOutput {
    /// Sigmoid tag scores, in label order.
    pub scores: Vec<f32>,
    /// The penultimate layer (after its batch normalisation): the learned embedding.
    pub penultimate: Vec<f32>,
}

struct Weights<'a>(SafeTensors<'a>);

impl Weights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let t = self
            .0
            .tensor(name)
            .map_err(|e| ModelError::Format(format!("{name}: {e}")))?;
        if t.dtype() != safetensors::Dtype::F32 {
            return Err(ModelError::Format(format!(
                "{name}: {:?}, not F32",
                t.dtype()
            )));
        }
        if t.shape() != shape {
            return Err(ModelError::Shape {
                name: name.into(),
                got: t.shape().to_vec(),
                want: shape.to_vec(),
            });
        }
        Ok(t.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    fn matrix(&self, name: &str, shape: &[usize]) -> Result<Array2<f32>, ModelError> {
        let rows = shape[..shape.len() - 1].iter().product();
        let cols = shape[shape.len() - 1];
        Ok(Array2::from_shape_vec((rows, cols), self.get(name, shape)?)
            .expect("size checked against the shape"))
    }

    fn norm(&self, index: usize, width: usize) -> Result<Norm, ModelError> {
        let prefix = match index {
            0 => "batch_normalization".to_string(),
            i => format!("batch_normalization_{i}"),
        };
        let get = |p: &str| self.get(&format!("{prefix}/{p}"), &[width]);
        let (gamma, beta) = (get("gamma")?, get("beta")?);
        let (mean, var) = (get("moving_mean")?, get("moving_variance")?);
        let scale: Array1<f32> = gamma
            .iter()
            .zip(&var)
            .map(|(g, v)| g / (v + BN_EPSILON).sqrt())
            .collect();
        let shift = beta
            .iter()
            .zip(&mean)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        Ok(Norm { scale, shift })
    }

    fn conv(&self, index: usize, shape: [usize; 4], norm: usize) -> Result<Conv, ModelError> {
        let name = match index {
            0 => "conv2d".to_string(),
            i => format!("conv2d_{i}"),
        };
        Ok(Conv {
            kernel: self.matrix(&format!("{name}/kernel"), &shape)?,
            bias: Array1::from(self.get(&format!("{name}/bias"), &[shape[3]])?),
            norm: self.norm(norm, shape[3])?,
        })
    }

    fn dense(
        &self,
        name: &str,
        shape: [usize; 2],
    ) -> Result<(Array2<f32>, Array1<f32>), ModelError> {
        Ok((
            self.matrix(&format!("{name}/kernel"), &shape)?,
            Array1::from(self.get(&format!("{name}/bias"), &[shape[1]])?),
        ))
    }
}

impl Musicnn {
    /// Loads a converted checkpoint (safetensors, f32, TensorFlow's variable names).
    pub fn load(bytes: &[u8]) -> Result<Musicnn, ModelError> {
        let (_, meta) =
            SafeTensors::read_metadata(bytes).map_err(|e| ModelError::Format(e.to_string()))?;
        let labels: Vec<String> = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("labels"))
            .and_then(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| ModelError::Format("no labels in the metadata".into()))?;
        if labels.len() != TAGS {
            return Err(ModelError::Format(format!(
                "{} labels, not {TAGS}",
                labels.len()
            )));
        }
        let w = Weights(
            SafeTensors::deserialize(bytes).map_err(|e| ModelError::Format(e.to_string()))?,
        );
        let input = w.norm(0, 1)?;
        let timbral = [(0, 38), (1, 67)].map(|(i, width)| {
            w.conv(i, [TIMBRAL_HEIGHT, width, 1, 204], i + 1)
                .map(|conv| Timbral { width, conv })
        });
        let temporal = [(2, 128), (3, 64), (4, 32)].map(|(i, length)| {
            w.conv(i, [length, 1, 1, 51], i + 1)
                .map(|conv| Temporal { length, conv })
        });
        let mid = [(5, 561), (6, 64), (7, 64)]
            .map(|(i, width)| w.conv(i, [MID_HEIGHT, width, 1, 64], i + 1));
        let [t0, t1] = timbral;
        let [s0, s1, s2] = temporal;
        let [m0, m1, m2] = mid;
        Ok(Musicnn {
            input: (input.scale[0], input.shift[0]),
            timbral: [t0?, t1?],
            temporal: [s0?, s1?, s2?],
            mid: [m0?, m1?, m2?],
            pool_norm: w.norm(9, 1506)?,
            dense: w.dense("dense", [1506, PENULTIMATE])?,
            dense_norm: w.norm(10, PENULTIMATE)?,
            out: w.dense("dense_1", [PENULTIMATE, TAGS])?,
            labels,
        })
    }

    /// Runs one patch of `PATCH` log-mel frames x `BANDS` bands, with `ws`'s buffers.
    pub fn run(&self, patch: ArrayView2<f32>, ws: &mut Workspace) -> PatchOutput {
        assert_eq!(patch.dim(), (PATCH, BANDS), "a patch is 187 x 96");
        let x = patch.mapv(|v| v * self.input.0 + self.input.1);
        let front = self.front_end(&x, ws);
        let mid = self.mid_end(front, ws);
        self.back_end(&mid)
    }

    /// The five front-end branches, concatenated: (frames, 204 + 204 + 51 x 3).
    fn front_end(&self, x: &Array2<f32>, ws: &mut Workspace) -> Array2<f32> {
        let mut parts: Vec<Array2<f32>> = Vec::with_capacity(5);
        let padded = pad_time(x.view(), TIMBRAL_HEIGHT / 2, TIMBRAL_HEIGHT / 2);
        for t in &self.timbral {
            let bins = BANDS - t.width + 1;
            let unfolded = unfold_2d(padded.view(), TIMBRAL_HEIGHT, t.width, &mut ws.unfolded);
            let y = t.conv.apply(unfolded, &mut ws.product);
            parts.push(max_over_groups(y, bins));
        }
        for t in &self.temporal {
            // TensorFlow's 'same' padding: the extra zero goes after.
            let before = (t.length - 1) / 2;
            let unfolded = unfold_time(x.view(), t.length, before, &mut ws.unfolded);
            let y = t.conv.apply(unfolded, &mut ws.product);
            parts.push(max_over_groups(y, BANDS));
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        ndarray::concatenate(Axis(1), &views).expect("every branch has PATCH rows")
    }

    /// The dense mid-end: three 7-frame convolutions across all features, the second and
    /// third with residual connections; returns the front-end and the three outputs
    /// concatenated (frames, 561 + 64 x 3).
    fn mid_end(&self, front: Array2<f32>, ws: &mut Workspace) -> Array2<f32> {
        let mut conv = |c: &Conv, x: &Array2<f32>| {
            let padded = pad_time(x.view(), MID_HEIGHT / 2, MID_HEIGHT / 2);
            // A kernel as wide as its input: one output position per frame.
            let unfolded = unfold_2d(padded.view(), MID_HEIGHT, x.ncols(), &mut ws.unfolded);
            c.apply(unfolded, &mut ws.product).to_owned()
        };
        let c1 = conv(&self.mid[0], &front);
        let c2 = conv(&self.mid[1], &c1) + &c1;
        let c3 = conv(&self.mid[2], &c2) + &c2;
        ndarray::concatenate(Axis(1), &[front.view(), c1.view(), c2.view(), c3.view()])
            .expect("every layer has PATCH rows")
    }

    /// Max and mean over time (interleaved per feature, as TensorFlow flattens them),
    /// normalised, the penultimate dense layer, and the sigmoid output.
    fn back_end(&self, mid: &Array2<f32>) -> PatchOutput {
        let frames = mid.nrows() as f32;
        let mut pooled = Array1::<f32>::zeros(2 * mid.ncols());
        for (j, col) in mid.columns().into_iter().enumerate() {
            pooled[2 * j] = col.fold(f32::MIN, |m, &v| m.max(v));
            pooled[2 * j + 1] = col.sum() / frames;
        }
        pooled.zip_mut_with(&self.pool_norm.scale, |v, s| *v *= s);
        pooled += &self.pool_norm.shift;
        let mut hidden = pooled.dot(&self.dense.0) + &self.dense.1;
        hidden.mapv_inplace(|v| v.max(0.0));
        hidden.zip_mut_with(&self.dense_norm.scale, |v, s| *v *= s);
        hidden += &self.dense_norm.shift;
        let logits = hidden.dot(&self.out.0) + &self.out.1;
        PatchOutput {
            scores: logits.iter().map(|&z| 1.0 / (1.0 + (-z).exp())).collect(),
            penultimate: hidden.to_vec(),
        }
    }
}

/// Zero rows added before and after (time padding).
fn pad_time(x: ArrayView2<f32>, before: usize, after: usize) -> Array2<f32> {
    let mut out = Array2::zeros((x.nrows() + before + after, x.ncols()));
    out.slice_mut(s![before..before + x.nrows(), ..]).assign(&x);
    out
}

/// The rows of a standard-layout array as one slice.
fn flat<'a>(x: &ArrayView2<'a, f32>) -> &'a [f32] {
    x.to_slice().expect("standard layout")
}

/// Unfolds (rows, cols) for a `height` x `width` valid convolution: one row per output
/// position (time-major, then frequency), `height * width` inputs each.
fn unfold_2d<'a>(
    x: ArrayView2<f32>,
    height: usize,
    width: usize,
    out: &'a mut Vec<f32>,
) -> ArrayView2<'a, f32> {
    let cols = x.ncols();
    let (rows, bins) = (x.nrows() - height + 1, cols - width + 1);
    let src = flat(&x);
    out.clear();
    for t in 0..rows {
        for f in 0..bins {
            for dt in 0..height {
                let at = (t + dt) * cols + f;
                out.extend_from_slice(&src[at..at + width]);
            }
        }
    }
    ArrayView2::from_shape((rows * bins, height * width), &out[..]).expect("sized above")
}

/// Unfolds (frames, bands) for a `length`-frame convolution along time with `before`
/// zeros of padding before (the rest after): one row per (frame, band), time-major.
fn unfold_time<'a>(
    x: ArrayView2<f32>,
    length: usize,
    before: usize,
    out: &'a mut Vec<f32>,
) -> ArrayView2<'a, f32> {
    let (frames, bands) = x.dim();
    // Each band's padded time series, contiguous.
    let padded_len = frames + length - 1;
    let mut series = vec![0.0f32; bands * padded_len];
    for (t, row) in x.rows().into_iter().enumerate() {
        for (b, v) in row.iter().enumerate() {
            series[b * padded_len + before + t] = *v;
        }
    }
    out.clear();
    for t in 0..frames {
        for b in 0..bands {
            let at = b * padded_len + t;
            out.extend_from_slice(&series[at..at + length]);
        }
    }
    ArrayView2::from_shape((frames * bands, length), &out[..]).expect("sized above")
}

/// (frames * groups, channels) -> (frames, channels): the maximum over each frame's groups.
fn max_over_groups(y: ArrayView2<f32>, groups: usize) -> Array2<f32> {
    let width = y.ncols();
    let rows = flat(&y);
    let frames = y.nrows() / groups;
    let mut out = vec![f32::MIN; frames * width];
    for (i, row) in rows.chunks_exact(width).enumerate() {
        let at = (i / groups) * width;
        for (m, v) in out[at..at + width].iter_mut().zip(row) {
            *m = m.max(*v);
        }
    }
    Array2::from_shape_vec((frames, width), out).expect("sized above")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_weights_file_is_an_error_not_a_panic() {
        let good: &[u8] = include_bytes!("../../models/msd_musicnn.safetensors");
        assert!(matches!(
            Musicnn::load(b"not a model"),
            Err(ModelError::Format(_))
        ));
        assert!(Musicnn::load(&good[..good.len() / 2]).is_err());
        assert!(Musicnn::load(good).is_ok());
    }
}
