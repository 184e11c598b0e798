//! A stored model: what MODELSTORE was given (backend, device, tag, batching, node names, blob),
//! the framework's loaded model behind an opaque handle, and its AI.INFO statistics.
use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use super::Backend;
use crate::tensor::buffer::SharedBytes;

/// Everything AI.MODELSTORE / AI.MODELSET specify.
#[derive(Clone)]
pub struct ModelSpec {
    pub backend: Backend,
    /// As the client wrote it (MODELGET shows it back).
    pub device: String,
    /// Upper-case run-queue name.
    pub queue: String,
    pub tag: Vec<u8>,
    pub batchsize: u64,
    pub minbatchsize: u64,
    pub minbatchtimeout: u64,
    /// Node names given with INPUTS/OUTPUTS (TF only).
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// The serialized model, all chunks concatenated.
    pub blob: SharedBytes,
}

/// AI.INFO counters; `runs` counts framework invocations (a batch is one run). `recent_us` is a
/// moving average of run time that decides whether a run may execute inline (not reset by RESETSTAT).
#[derive(Default)]
pub struct RunStats {
    pub duration_us: AtomicU64,
    pub samples: AtomicU64,
    pub calls: AtomicU64,
    pub errors: AtomicU64,
    pub runs: AtomicU64,
    pub recent_us: AtomicU64,
}

impl RunStats {
    /// Folds one run's duration into the moving average.
    pub fn record_run_time(&self, micros: u64) {
        let old = self.recent_us.load(Relaxed);
        let new = if old == 0 { micros.max(1) } else { (old * 7 + micros) / 8 };
        self.recent_us.store(new.max(1), Relaxed);
    }

    pub fn reset(&self) {
        for c in [&self.duration_us, &self.samples, &self.calls, &self.errors, &self.runs] {
            c.store(0, Relaxed);
        }
    }
}

/// A loaded, runnable model. Immutable; replacing a key swaps the whole Arc.
pub struct Model {
    pub spec: ModelSpec,
    /// Input/output names as the framework reports them (TF: those given).
    pub input_names: Vec<String>,
    pub output_names: Vec<String>,
    /// The framework's model, owned by the host (a Python object in redisai-fast).
    pub handle: Arc<dyn Any + Send + Sync>,
    pub stats: RunStats,
}

impl Model {
    pub fn new(spec: ModelSpec, input_names: Vec<String>, output_names: Vec<String>, handle: Arc<dyn Any + Send + Sync>) -> Model {
        Model { spec, input_names, output_names, handle, stats: RunStats::default() }
    }

    pub fn ninputs(&self) -> usize {
        self.input_names.len()
    }

    /// None when the framework cannot tell before running (e.g. a TorchScript returning a list).
    pub fn noutputs(&self) -> Option<usize> {
        if self.output_names.is_empty() {
            None
        } else {
            Some(self.output_names.len())
        }
    }

    pub fn memory_usage(&self) -> usize {
        self.spec.blob.len() + 256
    }
}
