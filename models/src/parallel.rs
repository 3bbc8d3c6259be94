//! Data-parallel training: a batch split into contiguous shards of whole samples, one per
//! thread; each thread computes its shard's loss and gradients with single-threaded tensor
//! operations, and the gradients are summed in a fixed order before one optimiser step.
//!
//! Why not the backend's own threading: candle parallelises inside each operation (the
//! GEMM, the element-wise maps). At this model's sizes most operations are too small for
//! that to pay — a second thread added only 15–40% to a training step — while whole
//! samples per thread keep every core busy for the whole step, element-wise work included.
//!
//! The result is the gradient of the full-batch loss (losses are per-sample means, so each
//! shard's mean is weighted by its share of the batch). It is deterministic for a given
//! thread count; different thread counts differ only in floating-point summation order.

use std::ops::Range;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::error::{ModelError, Result};

/// Makes the backend's tensor operations single-threaded for this process, so that
/// [`DataParallel`] owns the cores. Call it at the start of `main`, before any tensor
/// operation and before other threads exist (the backend reads these variables when it
/// first builds its thread pool, and on every matrix multiply).
pub fn single_threaded_ops() {
    std::env::set_var("CANDLE_NUM_THREADS", "1");
    std::env::set_var("RAYON_NUM_THREADS", "1");
}

/// The most samples one shard holds: smaller shards keep a layer's activations in the
/// caches. Measured on 2 cores, 2 threads, three alternating runs: 16 gave 534 / 529 /
/// 542 images/s at batch 32 / 64 / 128 against 519 / 504 / 484 for 32; 1 thread was level.
pub const MAX_SHARD: usize = 16;

/// Threads for data-parallel work and the pool that runs them.
pub struct DataParallel {
    threads: usize,
    pool: Option<rayon::ThreadPool>,
}

impl std::fmt::Debug for DataParallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataParallel").field("threads", &self.threads).finish()
    }
}

impl DataParallel {
    /// `threads` worker threads (1: everything on the calling thread).
    pub fn new(threads: usize) -> Result<Self> {
        let threads = threads.max(1);
        let pool = if threads > 1 {
            if candle_core::utils::get_num_threads() > 1 {
                tracing::warn!(
                    "tensor operations are multi-threaded as well as split across {threads} threads; \
                     call models::parallel::single_threaded_ops() first for full speed"
                );
            }
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("v1-train-{i}"))
                    .build()
                    .map_err(|e| ModelError::Invalid(format!("starting {threads} training threads: {e}")))?,
            )
        } else {
            None
        };
        Ok(Self { threads, pool })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// `0..n` in contiguous, non-empty ranges of near-equal length: one per thread, or
    /// more (a multiple of the thread count) to keep each at most [`MAX_SHARD`] samples.
    pub fn shards(&self, n: usize) -> Vec<Range<usize>> {
        let per_thread = n.div_ceil(self.threads).div_ceil(MAX_SHARD).max(1);
        let parts = (self.threads * per_thread).min(n).max(1);
        (0..parts).map(|i| (i * n / parts)..((i + 1) * n / parts)).filter(|r| !r.is_empty()).collect()
    }

    /// Runs `f` on each range, in parallel, and returns the results in range order.
    pub fn map<T, F>(&self, ranges: &[Range<usize>], f: F) -> Result<Vec<T>>
    where
        T: Send,
        F: Fn(Range<usize>) -> Result<T> + Sync,
    {
        match &self.pool {
            None => ranges.iter().map(|r| f(r.clone())).collect(),
            Some(pool) => {
                use rayon::prelude::*;
                pool.install(|| ranges.par_iter().map(|r| f(r.clone())).collect::<Vec<_>>()).into_iter().collect()
            }
        }
    }

    /// Gradients of a batch of `n` samples for `vars`, and the batch loss.
    ///
    /// `loss(range, share, first)` returns the loss of the samples in `range` as a mean
    /// over them times `share` (= range length / n), plus any batch-independent term
    /// (a regulariser) only when `first` is true: the shard losses then add up to the
    /// full-batch loss, and their gradients to its gradient.
    pub fn backward<F>(&self, n: usize, vars: &[Var], loss: F) -> Result<(GradStore, f64)>
    where
        F: Fn(Range<usize>, f64, bool) -> Result<Tensor> + Sync,
    {
        if n == 0 {
            return Err(ModelError::Invalid("a training step needs at least one sample".into()));
        }
        let shards = self.shards(n);
        let first = shards[0].start;
        let parts = self.map(&shards, |r| {
            let share = r.len() as f64 / n as f64;
            let l = loss(r.clone(), share, r.start == first)?;
            let value = l.to_scalar::<f32>()? as f64;
            let grads = l.backward()?;
            // Keep only the variables' gradients: the intermediate ones are freed here.
            let kept: Vec<Option<Tensor>> = vars.iter().map(|v| grads.get(v.as_tensor()).cloned()).collect();
            Ok((kept, value))
        })?;
        let mut total = 0f64;
        let mut sums: Vec<Option<Tensor>> = vec![None; vars.len()];
        for (kept, value) in parts {
            total += value;
            for (sum, g) in sums.iter_mut().zip(kept) {
                *sum = match (sum.take(), g) {
                    (Some(a), Some(b)) => Some((a + b)?),
                    (a, b) => a.or(b),
                };
            }
        }
        let mut store = GradStore::default();
        for (v, g) in vars.iter().zip(sums) {
            if let Some(g) = g {
                store.insert(v.as_tensor(), g);
            }
        }
        Ok((store, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn shards_cover_the_batch_in_order() {
        let dp = DataParallel::new(3).unwrap();
        assert_eq!(dp.shards(10), vec![0..3, 3..6, 6..10]);
        assert_eq!(dp.shards(2), vec![0..1, 1..2]);
        assert_eq!(dp.shards(1), vec![0..1]);
        assert_eq!(DataParallel::new(1).unwrap().shards(7), vec![0..7]);
        // Large batches: shards of at most MAX_SHARD samples, a multiple of the threads.
        assert_eq!(DataParallel::new(1).unwrap().shards(64), vec![0..16, 16..32, 32..48, 48..64]);
        assert_eq!(DataParallel::new(2).unwrap().shards(64), vec![0..16, 16..32, 32..48, 48..64]);
        let uneven = DataParallel::new(2).unwrap().shards(66);
        assert_eq!(uneven.len(), 6);
        assert!(uneven.iter().all(|r| r.len() <= MAX_SHARD) && uneven.last().unwrap().end == 66);
    }

    /// The summed shard gradients equal the full-batch gradient of a mean loss with a
    /// regulariser, for 1, 2 and 3 threads.
    #[test]
    fn sharded_gradients_equal_the_full_batch_gradient() {
        let dev = Device::Cpu;
        let n = 7;
        let x = Tensor::randn(0f32, 1f32, (n, 5), &dev).unwrap();
        let y = Tensor::randn(0f32, 1f32, (n, 3), &dev).unwrap();
        let w = Var::from_tensor(&Tensor::randn(0f32, 1f32, (5, 3), &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::randn(0f32, 1f32, 3, &dev).unwrap()).unwrap();
        let vars = vec![w.clone(), b.clone()];
        let batch_loss = |r: Range<usize>| -> candle_core::Result<Tensor> {
            let pred = x.narrow(0, r.start, r.len())?.matmul(w.as_tensor())?.broadcast_add(b.as_tensor())?;
            (pred - y.narrow(0, r.start, r.len())?)?.sqr()?.mean_all()
        };
        let reg = || w.as_tensor().abs().unwrap().sum_all().unwrap().affine(0.01, 0.0).unwrap();
        let full = (batch_loss(0..n).unwrap() + reg()).unwrap();
        let full_value = full.to_scalar::<f32>().unwrap() as f64;
        let full_grads = full.backward().unwrap();
        for threads in [1, 2, 3] {
            let dp = DataParallel::new(threads).unwrap();
            let (grads, value) = dp
                .backward(n, &vars, |r, share, first| {
                    let l = batch_loss(r)?.affine(share, 0.0)?;
                    Ok(if first { (l + reg())? } else { l })
                })
                .unwrap();
            assert!((value - full_value).abs() < 1e-5, "{threads} threads: loss {value} vs {full_value}");
            for v in &vars {
                let d = (grads.get(v.as_tensor()).unwrap() - full_grads.get(v.as_tensor()).unwrap())
                    .unwrap()
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(d < 1e-5, "{threads} threads: gradient differs by {d}");
            }
        }
    }

    #[test]
    fn an_empty_batch_is_an_error() {
        let dp = DataParallel::new(2).unwrap();
        let err = dp.backward(0, &[], |_, _, _| unreachable!()).unwrap_err();
        assert!(err.to_string().contains("at least one sample"), "{err}");
    }
}
