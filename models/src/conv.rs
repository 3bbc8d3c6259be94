//! Fast 2-D convolution for training on the CPU: im2col + one matrix multiply.
//!
//! The backend's own CPU convolution computes input gradients with a direct
//! transposed-convolution loop, which made a training step of this system's networks
//! several times slower than the matrix multiplies it contains. Here a convolution is
//! `W[Cout, Cin·k·k] × cols[Cin·k·k, B·Ho·Wo]`: the multiply (and both of its gradients)
//! run on the backend's GEMM, and the only hand-written kernels are the two memory
//! rearrangements, `im2col` and its adjoint `col2im`, exposed as custom ops whose
//! backward passes are each other. Weight names and shapes are those of
//! `candle_nn::Conv2d` (`weight` [Cout, Cin, k, k], `bias` [Cout]).

use candle_core::{CpuStorage, CustomOp1, Layout, Module, Result, Shape, Tensor};
use candle_nn::{Init, VarBuilder};
use rayon::prelude::*;

/// When set, every [`Conv2d`] runs the backend's own convolution instead (same weights,
/// same results): the reference that `v1 bench train --conv stock` measures against.
/// Tensors on a GPU always take the backend's convolution.
static STOCK_BACKEND: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Switches all [`Conv2d`] layers of this process between the im2col + GEMM path
/// (`false`, the default) and the backend's stock convolution (`true`), for benchmarks.
pub fn use_stock_backend(stock: bool) {
    STOCK_BACKEND.store(stock, std::sync::atomic::Ordering::Relaxed);
}

/// Geometry shared by the two rearrangements.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    batch: usize,
    channels: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: usize,
    ho: usize,
    wo: usize,
}

impl Geometry {
    fn rows(&self) -> usize {
        self.channels * self.k * self.k
    }
    fn cols(&self) -> usize {
        self.batch * self.ho * self.wo
    }
}

/// x [B, C, H, W] -> cols [C·k·k (+1), B·Ho·Wo]; with `ones_row`, a last row of ones
/// lets the bias ride in the same matrix multiply as the weights.
struct Im2Col {
    g: Geometry,
    ones_row: bool,
}
/// cols [C·k·k (+1), B·Ho·Wo] -> x [B, C, H, W] (summing overlaps): the adjoint of
/// [`Im2Col`] (a ones row, when present, has no input to flow back to).
struct Col2Im {
    g: Geometry,
    ones_row: bool,
}

fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &'static str) -> Result<&'a [f32]> {
    let data = match storage {
        CpuStorage::F32(d) => d,
        _ => return Err(candle_core::Error::Msg(format!("{op}: only f32 is supported"))),
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => Err(candle_core::Error::Msg(format!("{op}: input must be contiguous"))),
    }
}

/// The output columns `ox` whose input column `ox·stride + kx - pad` lies inside `0..w`,
/// as a half-open range: the loops below then run without per-element bounds tests.
fn valid_range(out_len: usize, in_len: usize, stride: usize, offset: usize, pad: usize) -> std::ops::Range<usize> {
    // ox·stride + offset >= pad  and  ox·stride + offset - pad < in_len
    let lo = pad.saturating_sub(offset).div_ceil(stride);
    let hi = if in_len + pad > offset { (in_len + pad - offset).div_ceil(stride) } else { 0 };
    lo.min(out_len)..hi.min(out_len).max(lo.min(out_len))
}

/// Below this many output values a rearrangement runs on the calling thread: handing it
/// to the pool costs more than it saves (a single image's layers are all below it).
const PARALLEL_MIN: usize = 1 << 18;

/// Runs `f` over the chunks in parallel on the global pool, or in order when already on
/// a worker thread (the data-parallel training step gives each thread whole samples),
/// when the pool has one thread, or when the work is small.
fn for_each_chunk<F: Fn(usize, &mut [f32]) + Sync + Send>(out: &mut [f32], chunk: usize, f: F) {
    if rayon::current_thread_index().is_some() || rayon::current_num_threads() == 1 || out.len() < PARALLEL_MIN {
        out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    } else {
        out.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    }
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.g;
        let x = contiguous_f32(storage, layout, "im2col")?;
        let n = g.cols();
        let rows = g.rows() + self.ones_row as usize;
        let mut out = vec![0f32; rows * n];
        for_each_chunk(&mut out, n, |r, row| {
            if r == g.rows() {
                row.fill(1.0);
                return;
            }
            let c = r / (g.k * g.k);
            let ky = (r / g.k) % g.k;
            let kx = r % g.k;
            let xs = valid_range(g.wo, g.w, g.stride, kx, g.pad);
            let ys = valid_range(g.ho, g.h, g.stride, ky, g.pad);
            if xs.is_empty() {
                return;
            }
            for b in 0..g.batch {
                let plane = &x[(b * g.channels + c) * g.h * g.w..][..g.h * g.w];
                let dst = &mut row[b * g.ho * g.wo..][..g.ho * g.wo];
                for oy in ys.clone() {
                    let y = oy * g.stride + ky - g.pad;
                    let src = &plane[y * g.w..][..g.w];
                    let d = &mut dst[oy * g.wo..][..g.wo][xs.clone()];
                    let first = xs.start * g.stride + kx - g.pad;
                    if g.stride == 1 {
                        d.copy_from_slice(&src[first..first + d.len()]);
                    } else {
                        for (v, s) in d.iter_mut().zip(src[first..].iter().step_by(g.stride)) {
                            *v = *s;
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((rows, n))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad_res.contiguous()?.apply_op1_no_bwd(&Col2Im { g: self.g, ones_row: self.ones_row })?))
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.g;
        let cols = contiguous_f32(storage, layout, "col2im")?;
        let n = g.cols();
        let mut out = vec![0f32; g.batch * g.channels * g.h * g.w];
        for_each_chunk(&mut out, g.h * g.w, |bc, plane| {
            let b = bc / g.channels;
            let c = bc % g.channels;
            for ky in 0..g.k {
                let ys = valid_range(g.ho, g.h, g.stride, ky, g.pad);
                for kx in 0..g.k {
                    let xs = valid_range(g.wo, g.w, g.stride, kx, g.pad);
                    if xs.is_empty() {
                        continue;
                    }
                    let first = xs.start * g.stride + kx - g.pad;
                    let r = (c * g.k + ky) * g.k + kx;
                    let src = &cols[r * n + b * g.ho * g.wo..][..g.ho * g.wo];
                    for oy in ys.clone() {
                        let y = oy * g.stride + ky - g.pad;
                        let dst = &mut plane[y * g.w..][..g.w];
                        let s = &src[oy * g.wo..][..g.wo][xs.clone()];
                        if g.stride == 1 {
                            for (d, v) in dst[first..first + s.len()].iter_mut().zip(s) {
                                *d += *v;
                            }
                        } else {
                            for (d, v) in dst[first..].iter_mut().step_by(g.stride).zip(s) {
                                *d += *v;
                            }
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((g.batch, g.channels, g.h, g.w))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        // The adjoint of col2im is im2col; a ones row in the input never reached the
        // output, so its gradient is zero.
        let cols = grad_res.contiguous()?.apply_op1_no_bwd(&Im2Col { g: self.g, ones_row: false })?;
        if !self.ones_row {
            return Ok(Some(cols));
        }
        let zeros = Tensor::zeros((1, self.g.cols()), cols.dtype(), cols.device())?;
        Ok(Some(Tensor::cat(&[&cols, &zeros], 0)?))
    }
}

/// The multiply's output [Cout, B, N] rearranged to the batch-major [B, Cout, N] the
/// networks use, with an optional ReLU in the same pass. Its backward is one pass too
/// (mask by the output, rearrange back), where the separate operations took a copy, a
/// comparison, a multiply and their gradient bookkeeping in each direction.
struct ToBatchMajor {
    cout: usize,
    batch: usize,
    n: usize,
    relu: bool,
}

impl CustomOp1 for ToBatchMajor {
    fn name(&self) -> &'static str {
        "to_batch_major"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let y = contiguous_f32(storage, layout, "to_batch_major")?;
        let (cout, n, relu) = (self.cout, self.n, self.relu);
        let mut out = vec![0f32; self.batch * cout * n];
        for_each_chunk(&mut out, n, |bc, dst| {
            let (b, c) = (bc / cout, bc % cout);
            let src = &y[(c * self.batch + b) * n..][..n];
            if relu {
                for (d, v) in dst.iter_mut().zip(src) {
                    *d = v.max(0.0);
                }
            } else {
                dst.copy_from_slice(src);
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((self.batch, cout, n))))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let back = FromBatchMajor { cout: self.cout, batch: self.batch, n: self.n };
        let g = grad_res.contiguous()?;
        Ok(Some(if self.relu { g.apply_op2_no_bwd(&res.contiguous()?, &back)? } else { g.apply_op1_no_bwd(&back)? }))
    }
}

/// Gradient of [`ToBatchMajor`]: [B, Cout, N] -> [Cout, B·N]; as a two-argument op the
/// second argument is the forward output, and the gradient is zero where it is not
/// positive (the ReLU).
struct FromBatchMajor {
    cout: usize,
    batch: usize,
    n: usize,
}

impl FromBatchMajor {
    fn run(&self, g: &[f32], relu_out: Option<&[f32]>) -> (CpuStorage, Shape) {
        let (batch, cout, n) = (self.batch, self.cout, self.n);
        let mut out = vec![0f32; batch * cout * n];
        for_each_chunk(&mut out, n, |cb, dst| {
            let (c, b) = (cb / batch, cb % batch);
            let at = (b * cout + c) * n;
            let src = &g[at..][..n];
            match relu_out {
                Some(o) => {
                    for ((d, v), o) in dst.iter_mut().zip(src).zip(&o[at..][..n]) {
                        *d = if *o > 0.0 { *v } else { 0.0 };
                    }
                }
                None => dst.copy_from_slice(src),
            }
        });
        (CpuStorage::F32(out), Shape::from((cout, batch * n)))
    }
}

impl CustomOp1 for FromBatchMajor {
    fn name(&self) -> &'static str {
        "from_batch_major"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok(self.run(contiguous_f32(storage, layout, "from_batch_major")?, None))
    }
}

impl candle_core::CustomOp2 for FromBatchMajor {
    fn name(&self) -> &'static str {
        "from_batch_major_relu"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = contiguous_f32(s1, l1, "from_batch_major")?;
        Ok(self.run(g, Some(contiguous_f32(s2, l2, "from_batch_major")?)))
    }
}

/// A 2-D convolution layer (square kernel, same stride and padding in both directions).
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Tensor,
    k: usize,
    stride: usize,
    pad: usize,
}

impl Conv2d {
    pub fn new(weight: Tensor, bias: Tensor, stride: usize, pad: usize) -> Result<Self> {
        let (_, _, k, k2) = weight.dims4()?;
        if k != k2 {
            return Err(candle_core::Error::Msg(format!("conv kernel must be square, got {k}x{k2}")));
        }
        Ok(Self { weight, bias, k, stride, pad })
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The same layer for an input whose channels are all equal, given as one channel:
    /// conv(x repeated C times, W) = conv(x, W summed over its input channels).
    pub fn with_inputs_summed(&self) -> Result<Self> {
        Self::new(self.weight.sum_keepdim(1)?, self.bias.clone(), self.stride, self.pad)
    }
}

/// Builds a [`Conv2d`] with the variable names and initialisation of `candle_nn::conv2d`.
pub fn conv2d(cin: usize, cout: usize, k: usize, stride: usize, pad: usize, vb: VarBuilder) -> Result<Conv2d> {
    let weight = vb.get_with_hints((cout, cin, k, k), "weight", candle_nn::init::DEFAULT_KAIMING_NORMAL)?;
    let bound = 1.0 / ((cin * k * k) as f64).sqrt();
    let bias = vb.get_with_hints(cout, "bias", Init::Uniform { lo: -bound, up: bound })?;
    Conv2d::new(weight, bias, stride, pad)
}

impl Conv2d {
    /// relu(conv(x)) in fewer passes than the two operations apart.
    pub fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, true)
    }

    fn run(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let (cout, cin, _, _) = self.weight.dims4()?;
        if c != cin {
            return Err(candle_core::Error::Msg(format!("conv expects {cin} input channels, got {c}")));
        }
        // The rearrangements below are CPU kernels; on a GPU the backend's own convolution
        // runs instead.
        if STOCK_BACKEND.load(std::sync::atomic::Ordering::Relaxed) || !x.device().is_cpu() {
            let y = x.conv2d(&self.weight, self.pad, self.stride, 1, 1)?;
            let y = y.broadcast_add(&self.bias.reshape((1, cout, 1, 1))?)?;
            return if relu { y.relu() } else { Ok(y) };
        }
        let ho = (h + 2 * self.pad - self.k) / self.stride + 1;
        let wo = (w + 2 * self.pad - self.k) / self.stride + 1;
        let g = Geometry { batch: b, channels: c, h, w, k: self.k, stride: self.stride, pad: self.pad, ho, wo };
        // [W | b] x [cols; 1]: the bias is one more column of the weights, so its
        // gradient comes out of the same multiply instead of a separate reduction.
        let cols = x.contiguous()?.apply_op1(Im2Col { g, ones_row: true })?; // [C·k·k + 1, B·Ho·Wo]
        let w2 = Tensor::cat(&[&self.weight.reshape((cout, cin * self.k * self.k))?, &self.bias.reshape((cout, 1))?], 1)?;
        let out = w2.matmul(&cols)?; // [Cout, B·Ho·Wo]
        out.apply_op1(ToBatchMajor { cout, batch: b, n: ho * wo, relu })?.reshape((b, cout, ho, wo))
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn compare(b: usize, cin: usize, cout: usize, hw: usize, k: usize, stride: usize, pad: usize) {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1f32, (b, cin, hw, hw), &dev).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(0f32, 0.3f32, (cout, cin, k, k), &dev).unwrap()).unwrap();
        let bias = Var::from_tensor(&Tensor::randn(0f32, 0.3f32, cout, &dev).unwrap()).unwrap();
        let ours = Conv2d::new(w.as_tensor().clone(), bias.as_tensor().clone(), stride, pad).unwrap();
        let y1 = ours.forward(x.as_tensor()).unwrap();
        let reference = candle_nn::Conv2d::new(
            w.as_tensor().clone(),
            Some(bias.as_tensor().clone()),
            candle_nn::Conv2dConfig { padding: pad, stride, ..Default::default() },
        );
        let y2 = reference.forward(x.as_tensor()).unwrap();
        assert_eq!(y1.dims(), y2.dims());
        check_gradients(&y1, &y2, &x, &w, &bias);
        // The fused ReLU against the backend's conv followed by its ReLU.
        let y1 = ours.forward_relu(x.as_tensor()).unwrap();
        let y2 = reference.forward(x.as_tensor()).unwrap().relu().unwrap();
        check_gradients(&y1, &y2, &x, &w, &bias);
    }

    fn check_gradients(y1: &Tensor, y2: &Tensor, x: &Var, w: &Var, bias: &Var) {
        let dev = Device::Cpu;
        let diff = (y1 - y2).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-4, "forward differs by {diff}");
        // Gradients of a weighted sum, ours vs the backend's.
        let proj = Tensor::randn(0f32, 1f32, y1.dims(), &dev).unwrap();
        let g1 = (y1 * &proj).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (y2 * &proj).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, v) in [("input", x), ("weight", w), ("bias", bias)] {
            let a = g1.get(v.as_tensor()).unwrap();
            let b = g2.get(v.as_tensor()).unwrap();
            let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let scale = b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1.0);
            assert!(d / scale < 1e-4, "{name} gradient differs by {d} (scale {scale})");
        }
    }

    #[test]
    fn matches_the_backend_convolution_and_its_gradients() {
        compare(2, 3, 4, 8, 3, 1, 1);
        compare(3, 4, 5, 9, 3, 2, 1);
        compare(2, 5, 3, 6, 1, 1, 0);
        compare(1, 2, 2, 7, 5, 1, 2);
        // Edge geometry: no padding with stride 2, stride 3, padding wider than half the kernel.
        compare(2, 3, 4, 9, 3, 2, 0);
        compare(1, 2, 3, 10, 5, 2, 2);
        compare(2, 2, 2, 8, 3, 3, 1);
        compare(1, 1, 2, 4, 3, 1, 2);
    }

    #[test]
    fn input_gradient_matches_finite_differences() {
        let dev = Device::Cpu;
        let x0: Vec<f32> = (0..2 * 2 * 5 * 5).map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0).collect();
        let w = Tensor::from_vec((0..3 * 2 * 9).map(|i| ((i * 13 % 7) as f32 - 3.0) / 4.0).collect::<Vec<_>>(), (3, 2, 3, 3), &dev).unwrap();
        let conv = Conv2d::new(w, Tensor::zeros(3, candle_core::DType::F32, &dev).unwrap(), 2, 1).unwrap();
        let f = |v: &[f32]| -> f64 {
            let t = Tensor::from_vec(v.to_vec(), (2, 2, 5, 5), &dev).unwrap();
            conv.forward(&t).unwrap().sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64
        };
        let x = Var::from_tensor(&Tensor::from_vec(x0.clone(), (2, 2, 5, 5), &dev).unwrap()).unwrap();
        let grads = conv.forward(x.as_tensor()).unwrap().sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let g: Vec<f32> = grads.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        for i in [0usize, 7, 23, 49, 77, 99] {
            let eps = 1e-2f32;
            let mut p = x0.clone();
            p[i] += eps;
            let mut m = x0.clone();
            m[i] -= eps;
            let fd = (f(&p) - f(&m)) / (2.0 * eps as f64);
            assert!((fd - g[i] as f64).abs() < 1e-2 * fd.abs().max(1.0), "element {i}: finite difference {fd}, gradient {}", g[i]);
        }
    }
}
