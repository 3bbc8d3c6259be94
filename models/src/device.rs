//! Where the networks run: the CPU (always) or an NVIDIA GPU (builds with the `cuda`
//! feature). Every command and service that runs a network takes `--device cpu|cuda|cuda:N`
//! and opens it here, so the choice, its spelling and its errors are the same everywhere.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

use crate::error::{ModelError, Result};

/// A device named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The CPU: the default, and the only device of a build without the `cuda` feature.
    #[default]
    Cpu,
    /// The NVIDIA GPU with this ordinal (`cuda` is `cuda:0`).
    Cuda(usize),
}

impl DeviceChoice {
    /// True when this build can open CUDA devices (it was built with the `cuda` feature).
    pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

    /// Opens the device. A GPU that is missing, or a build without CUDA, is an error that
    /// says what to do, never a panic.
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda(ordinal) => open_cuda(ordinal),
        }
    }

    pub fn is_cpu(self) -> bool {
        self == DeviceChoice::Cpu
    }
}

#[cfg(feature = "cuda")]
fn open_cuda(ordinal: usize) -> Result<Device> {
    // Defensive: a failure inside the CUDA bindings that panics instead of returning an
    // error (a broken installation) is reported like any other failure to open the device.
    let opened = std::panic::catch_unwind(|| Device::new_cuda(ordinal));
    match opened {
        Ok(Ok(device)) => Ok(device),
        // The backend appends a backtrace when RUST_BACKTRACE is set: the first line says it.
        Ok(Err(e)) => Err(ModelError::Invalid(format!(
            "cannot open CUDA device {ordinal}: {}; check that `nvidia-smi` lists it and that the NVIDIA driver \
             is installed, or run with --device cpu",
            e.to_string().lines().next().unwrap_or("unknown error")
        ))),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("the CUDA bindings failed");
            Err(ModelError::Invalid(format!(
                "cannot open CUDA device {ordinal}: {why}; install the NVIDIA driver and the CUDA 13 libraries \
                 (cuBLAS, cuRAND, NVRTC) this build links, or run with --device cpu"
            )))
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(ordinal: usize) -> Result<Device> {
    Err(ModelError::Invalid(format!(
        "--device cuda:{ordinal} needs a build with CUDA support, and this one has none; rebuild with \
         `cargo build --release --features cuda` (docs/gpu.md), or run with --device cpu"
    )))
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        if t == "cpu" {
            return Ok(DeviceChoice::Cpu);
        }
        if t == "cuda" || t == "gpu" {
            return Ok(DeviceChoice::Cuda(0));
        }
        if let Some(n) = t.strip_prefix("cuda:") {
            return n
                .parse()
                .map(DeviceChoice::Cuda)
                .map_err(|_| format!("`{s}`: the GPU's number after `cuda:` must be a whole number such as cuda:0"));
        }
        Err(format!("`{s}` is not a device; use cpu, cuda (the first GPU) or cuda:N"))
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_devices() {
        for (text, want) in [("cpu", DeviceChoice::Cpu), ("CUDA", DeviceChoice::Cuda(0)), ("cuda:3", DeviceChoice::Cuda(3))] {
            let got: DeviceChoice = text.parse().unwrap();
            assert_eq!(got, want);
            assert_eq!(got.to_string().parse::<DeviceChoice>().unwrap(), want);
        }
        let bad = "tpu".parse::<DeviceChoice>().unwrap_err();
        assert!(bad.contains("`tpu`") && bad.contains("cuda:N"), "{bad}");
        assert!("cuda:x".parse::<DeviceChoice>().unwrap_err().contains("whole number"));
    }

    #[test]
    fn the_cpu_always_opens() {
        assert!(DeviceChoice::Cpu.open().unwrap().is_cpu());
    }

    /// Without a GPU (or without the feature) opening one is an error naming the way out.
    #[test]
    fn a_missing_gpu_is_an_error_not_a_panic() {
        match DeviceChoice::Cuda(97).open() {
            Ok(_) => {} // a machine with 98 GPUs
            Err(e) => assert!(e.to_string().contains("--device cpu"), "{e}"),
        }
    }
}
