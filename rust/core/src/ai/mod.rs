//! RedisAI's AI objects that are not tensors: backends, devices, models (and their run
//! statistics). Frameworks live in Python; a model here holds an opaque handle to the loaded one.
pub mod model;
pub mod script;

pub use model::{Model, ModelSpec, RunStats};
pub use script::{Script, ScriptSpec};

use crate::error::{CmdError, CmdResult};

/// The four frameworks RedisAI knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Tf,
    TfLite,
    Torch,
    Onnx,
}

impl Backend {
    pub const ALL: [Backend; 4] = [Backend::Tf, Backend::TfLite, Backend::Torch, Backend::Onnx];

    pub fn parse(s: &[u8]) -> Option<Backend> {
        Self::ALL.into_iter().find(|b| b.name().as_bytes().eq_ignore_ascii_case(s))
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Tf => "TF",
            Backend::TfLite => "TFLITE",
            Backend::Torch => "TORCH",
            Backend::Onnx => "ONNX",
        }
    }
}

/// Checks a device string the way AI.MODELSTORE does: `CPU`, `GPU`, or `CPU:<n>` / `GPU:<n>`
/// (digits only, under 10 characters). Returns the run-queue name (upper case).
pub fn parse_device(s: &[u8]) -> CmdResult<String> {
    let invalid = || CmdError::err("Invalid DEVICE");
    let up = std::str::from_utf8(s).map_err(|_| invalid())?.to_ascii_uppercase();
    if up == "CPU" || up == "GPU" {
        return Ok(up);
    }
    if up.len() >= 10 {
        return Err(invalid());
    }
    match up.split_once(':') {
        Some(("CPU" | "GPU", n)) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => Ok(up),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices() {
        for ok in ["CPU", "cpu", "GPU", "gpu:0", "GPU:12", "CPU:1"] {
            assert!(parse_device(ok.as_bytes()).is_ok(), "{ok}");
        }
        assert_eq!(parse_device(b"gpu:1").expect("a valid device"), "GPU:1");
        for bad in ["bad_device", "CPU::", "CPU:1.8", "CPU:123456", "TPU", "GPU:", ""] {
            assert_eq!(parse_device(bad.as_bytes()).unwrap_err().0, "ERR Invalid DEVICE", "{bad}");
        }
    }

    #[test]
    fn backends() {
        assert_eq!(Backend::parse(b"torch"), Some(Backend::Torch));
        assert_eq!(Backend::parse(b"TFLITE"), Some(Backend::TfLite));
        assert_eq!(Backend::parse(b"PYTORCH"), None);
    }
}
