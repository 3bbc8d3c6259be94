use candle_core::{Device, Tensor, Module};
use std::time::Instant;
fn main() {
    let dev = Device::Cpu;
    let varmap = candle_nn::VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &dev);
    let conv = models::conv::conv2d(32, 32, 3, 1, 1, vb.pp("c")).unwrap();
    let x = Tensor::randn(0f32, 1., (64, 32, 24, 24), &dev).unwrap();
    for _ in 0..3 {
        let t = Instant::now(); let y = conv.forward(&x).unwrap(); let e = t.elapsed();
        let t = Instant::now(); let _g = y.sum_all().unwrap().backward().unwrap(); let b = t.elapsed();
        println!("conv fwd {e:?} bwd {b:?} (ideal fwd at 40 GFLOP/s: {:.1} ms)", 2.0*64.0*576.0*32.0*288.0/40e9*1e3);
        let t = Instant::now(); let w2 = conv.weight().reshape((32, 288)).unwrap(); let cols = Tensor::randn(0f32,1.,(288, 36864),&dev).unwrap(); let _ = t.elapsed();
        let t = Instant::now(); let o = w2.matmul(&cols).unwrap(); let m = t.elapsed();
        let t = Instant::now(); let o2 = o.reshape((32,64,24,24)).unwrap().transpose(0,1).unwrap().contiguous().unwrap(); let tr = t.elapsed();
        let t = Instant::now(); let _ = o2.relu().unwrap(); let r = t.elapsed();
        println!("  matmul {m:?} transpose+contig {tr:?} relu {r:?}");
    }
}
