//! Fast 2-D convolution for training on the CPU: im2col + one matrix multiply.
//!
//! The backend's own CPU convolution computes input gradients with a direct
//! transposed-convolution loop, which made a training step of this system's networks
//! several times slower than the matrix multiplies it contains. Here a convolution is
//! `W[Cout, Cin·k·k] × cols[Cin·k·k, B·Ho·Wo]`: the multiply (and both of its gradients)
//! run on the backend's GEMM, and the only hand-written kernels are the memory
//! rearrangements: `im2col`, its adjoint `col2im`, and the moves between the multiply's
//! channel-major output and the networks' batch-major layout.
//!
//! The whole layer is one node of the autograd graph ([`FusedConv`]): the backend's
//! backward pass gives every node's input a zero-filled gradient buffer and then adds the
//! incoming gradient to it, and with im2col, the multiply and the rearrangement as
//! separate nodes that happened for the column matrix (k·k times the input) and the
//! multiply's output on every layer and step. The backward pass recomputes the columns
//! instead of keeping them alive between the passes. Weight names and shapes are those of
//! `candle_nn::Conv2d` (`weight` [Cout, Cin, k, k], `bias` [Cout]).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Device, Layout, Module, Result, Shape, Storage, Tensor};
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
/// [`Im2Col`] (a ones row, when present, has no input to flow back to and is not read).
struct Col2Im {
    g: Geometry,
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

/// Whether `values` of output are written on the calling thread: already on a worker
/// thread, a pool of one thread, or too little work.
fn in_order(values: usize) -> bool {
    rayon::current_thread_index().is_some() || rayon::current_num_threads() == 1 || values < PARALLEL_MIN
}

/// Runs `f` over the chunks in parallel on the global pool, or in order when already on
/// a worker thread (the data-parallel training step gives each thread whole samples),
/// when the pool has one thread, or when the work is small.
fn for_each_chunk<F: Fn(usize, &mut [f32]) + Sync + Send>(out: &mut [f32], chunk: usize, f: F) {
    if in_order(out.len()) {
        out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    } else {
        out.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// A [rows x len] matrix built row by row: `fill(r, out)` appends row r's `len` values.
/// In order (see [`for_each_chunk`] for when), into one vector whose values are each
/// written once: no zero-fill first, which cost as much as the rearrangement itself. In
/// parallel, each row is built on the pool and the rows are joined.
fn build_rows<F: Fn(usize, &mut Vec<f32>) + Sync + Send>(rows: usize, len: usize, fill: F) -> Vec<f32> {
    let total = rows * len;
    if in_order(total) {
        let mut out = Vec::with_capacity(total);
        for r in 0..rows {
            fill(r, &mut out);
        }
        out
    } else {
        let parts: Vec<Vec<f32>> = (0..rows)
            .into_par_iter()
            .map(|r| {
                let mut row = Vec::with_capacity(len);
                fill(r, &mut row);
                row
            })
            .collect();
        parts.concat()
    }
}

/// Appends `n` copies of `v`.
fn push_n(out: &mut Vec<f32>, n: usize, v: f32) {
    out.resize(out.len() + n, v);
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
        let out = build_rows(rows, n, |r, out| {
            if r == g.rows() {
                push_n(out, n, 1.0);
                return;
            }
            let c = r / (g.k * g.k);
            let ky = (r / g.k) % g.k;
            let kx = r % g.k;
            let xs = valid_range(g.wo, g.w, g.stride, kx, g.pad);
            let ys = valid_range(g.ho, g.h, g.stride, ky, g.pad);
            let first = (xs.start * g.stride + kx).saturating_sub(g.pad);
            for b in 0..g.batch {
                let plane = &x[(b * g.channels + c) * g.h * g.w..][..g.h * g.w];
                for oy in 0..g.ho {
                    if xs.is_empty() || !ys.contains(&oy) {
                        push_n(out, g.wo, 0.0);
                        continue;
                    }
                    let y = oy * g.stride + ky - g.pad;
                    let src = &plane[y * g.w..][..g.w];
                    push_n(out, xs.start, 0.0);
                    if g.stride == 1 {
                        out.extend_from_slice(&src[first..first + xs.len()]);
                    } else {
                        out.extend(src[first..].iter().step_by(g.stride).take(xs.len()));
                    }
                    push_n(out, g.wo - xs.end, 0.0);
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((rows, n))))
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
        let out = build_rows(self.batch * cout, n, |bc, out| {
            let (b, c) = (bc / cout, bc % cout);
            let src = &y[(c * self.batch + b) * n..][..n];
            if relu {
                out.extend(src.iter().map(|v| v.max(0.0)));
            } else {
                out.extend_from_slice(src);
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((self.batch, cout, n))))
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
        let out = build_rows(cout * batch, n, |cb, out| {
            let (c, b) = (cb / batch, cb % batch);
            let at = (b * cout + c) * n;
            let src = &g[at..][..n];
            match relu_out {
                Some(o) => out.extend(src.iter().zip(&o[at..][..n]).map(|(v, o)| if *o > 0.0 { *v } else { 0.0 })),
                None => out.extend_from_slice(src),
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

/// One convolution layer as one node of the graph: x [B, C, H, W] and `[W | b]`
/// [Cout, C·k·k + 1] -> [B, Cout, Ho, Wo], with an optional ReLU. Forward: im2col (with a
/// ones row for the bias), the multiply, the batch-major rearrangement. Backward: the
/// output gradient back to channel-major (masked by the ReLU), then both products of the
/// multiply's gradient, with the columns recomputed, and col2im for the input's.
struct FusedConv {
    g: Geometry,
    cout: usize,
    relu: bool,
}

/// The f32 data of a CPU tensor, contiguous, for a custom op's own multiply.
fn with_cpu_f32<T>(t: &Tensor, op: &'static str, f: impl FnOnce(&CpuStorage, &Layout) -> Result<T>) -> Result<T> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => f(cpu, layout),
        _ => Err(candle_core::Error::Msg(format!("{op}: expected a tensor on the CPU"))),
    }
}

impl CustomOp2 for FusedConv {
    fn name(&self) -> &'static str {
        "conv2d_im2col"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.g;
        let rows = g.rows() + 1;
        let im2col = Im2Col { g, ones_row: true };
        let cols = match im2col.cpu_fwd(xs, xl)?.0 {
            CpuStorage::F32(v) => Tensor::from_vec(v, (rows, g.cols()), &Device::Cpu)?,
            _ => return Err(candle_core::Error::Msg("conv2d_im2col: im2col gave no f32 data".into())),
        };
        let w2 = Tensor::from_slice(contiguous_f32(ws, wl, "conv2d_im2col")?, (self.cout, rows), &Device::Cpu)?;
        let out = w2.matmul(&cols)?; // [Cout, B·Ho·Wo]
        let to_batch = ToBatchMajor { cout: self.cout, batch: g.batch, n: g.ho * g.wo, relu: self.relu };
        let (y, _) = with_cpu_f32(&out, "conv2d_im2col", |s, l| to_batch.cpu_fwd(s, l))?;
        Ok((y, Shape::from((g.batch, self.cout, g.ho, g.wo))))
    }

    fn bwd(&self, x: &Tensor, w2: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = self.g;
        let n = g.ho * g.wo;
        let back = FromBatchMajor { cout: self.cout, batch: g.batch, n };
        let grad = grad_res.reshape((g.batch, self.cout, n))?.contiguous()?;
        let grad_out = if self.relu {
            grad.apply_op2_no_bwd(&res.reshape((g.batch, self.cout, n))?.contiguous()?, &back)?
        } else {
            grad.apply_op1_no_bwd(&back)?
        }; // [Cout, B·Ho·Wo]
        let cols = x.contiguous()?.apply_op1_no_bwd(&Im2Col { g, ones_row: true })?;
        let grad_w2 = grad_out.matmul(&cols.t()?)?;
        let grad_cols = w2.detach().t()?.matmul(&grad_out)?;
        let grad_x = grad_cols.apply_op1_no_bwd(&Col2Im { g })?;
        Ok((Some(grad_x), Some(grad_w2)))
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
        let w2 = Tensor::cat(&[&self.weight.reshape((cout, cin * self.k * self.k))?, &self.bias.reshape((cout, 1))?], 1)?;
        x.contiguous()?.apply_op2(&w2, FusedConv { g, cout, relu })
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
        // Large enough for the rearrangements to run on the pool (PARALLEL_MIN values).
        compare(4, 8, 6, 48, 3, 1, 1);
        compare(4, 8, 6, 48, 3, 2, 1);
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
