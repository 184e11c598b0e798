//! A stored TorchScript script: its source, device, tag and entry points, the compiled script
//! behind an opaque handle (compiled once at store time by the host), and its AI.INFO statistics.
use std::any::Any;
use std::sync::Arc;

use super::RunStats;

/// What AI.SCRIPTSTORE / AI.SCRIPTSET specify.
#[derive(Clone, PartialEq, Eq)]
pub struct ScriptSpec {
    /// As the client wrote it.
    pub device: String,
    /// Upper-case run-queue name.
    pub queue: String,
    pub tag: Vec<u8>,
    /// Functions callable with the (tensors, keys, args) signature; empty for AI.SCRIPTSET.
    pub entry_points: Vec<String>,
    pub source: String,
}

pub struct Script {
    pub spec: ScriptSpec,
    pub handle: Arc<dyn Any + Send + Sync>,
    pub stats: RunStats,
}

impl Script {
    pub fn new(spec: ScriptSpec, handle: Arc<dyn Any + Send + Sync>) -> Script {
        Script { spec, handle, stats: RunStats::default() }
    }

    pub fn memory_usage(&self) -> usize {
        self.spec.source.len() + 256
    }
}
