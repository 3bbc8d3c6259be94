use candle_core::{Device, Tensor};
use std::time::Instant;
fn main() {
    let dev = Device::Cpu;
    let arch = models::ArchConfig::default();
    let varmap = candle_nn::VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &dev);
    let enc = models::image_encoder::ImageEncoder::new(&arch, vb.pp("e")).unwrap();
    let dec = models::image_decoder::ImageDecoder::new(&arch, vb.pp("d")).unwrap();
    let wd = models::waveform_decoder::WaveformDecoder::new(&arch, 12, 3, 100, vb.pp("w")).unwrap();
    let x = Tensor::randn(0f32, 1., (64, 1, 48, 48), &dev).unwrap();
    for _ in 0..2 {
        let t = Instant::now(); let z = enc.forward(&x).unwrap(); let te = t.elapsed();
        let t = Instant::now(); let r = dec.forward(&z).unwrap(); let td = t.elapsed();
        let t = Instant::now(); let w = wd.forward(&z).unwrap(); let tw = t.elapsed();
        let t = Instant::now(); let _g = r.sqr().unwrap().mean_all().unwrap().backward().unwrap(); let tb1 = t.elapsed();
        let t = Instant::now(); let _g = w.mean_all().unwrap().backward().unwrap(); let tb2 = t.elapsed();
        let t = Instant::now(); let _g = enc.forward(&x).unwrap().mean_all().unwrap().backward().unwrap(); let tb3 = t.elapsed();
        println!("enc fwd {te:?} dec fwd {td:?} wdec fwd {tw:?} | bwd(enc+dec) {tb1:?} bwd(enc+wdec) {tb2:?} fwd+bwd(enc) {tb3:?}");
    }
}
