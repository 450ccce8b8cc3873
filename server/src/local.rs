//! The embedded local runtime: libtorch as loaded by this process.

use app::overview::LocalRuntimeStatus;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Reports the device and runs a small matrix product through libtorch, so
/// the Overview shows a runtime that really computes, not one assumed to.
pub fn probe() -> LocalRuntimeStatus {
    let cuda_devices = tch::Cuda::device_count();
    LocalRuntimeStatus {
        device: if tch::Cuda::is_available() { "cuda" } else { "cpu" }.to_string(),
        cuda_devices,
        threads: tch::get_num_threads(),
        mkl: tch::utils::has_mkl(),
        self_check: self_check(),
    }
}

fn self_check() -> Result<f64, String> {
    let started = Instant::now();
    let a = Tensor::f_ones([256, 256], (Kind::Float, Device::Cpu)).map_err(|e| e.to_string())?;
    let product = a.f_matmul(&a).map_err(|e| e.to_string())?;
    // Every entry of ones(256,256)² is 256, so the mean must be exactly 256.
    let mean = product
        .f_mean(Kind::Float)
        .and_then(|m| m.f_double_value(&[]))
        .map_err(|e| e.to_string())?;
    if mean != 256.0 {
        return Err(format!("libtorch computed a wrong result ({mean} instead of 256)"));
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn libtorch_computes() {
        let status = super::probe();
        assert!(status.self_check.is_ok(), "{:?}", status.self_check);
        assert!(status.threads >= 1);
        assert!(status.device == "cpu" || status.device == "cuda");
    }
}
