//! The value types a key can hold, their Redis type names and size estimates.
use std::collections::VecDeque;

use indexmap::IndexMap;

use std::sync::Arc;

use crate::ai::{Model, Script};
use crate::tensor::Tensor;

pub type Hash = IndexMap<Vec<u8>, Vec<u8>>;
pub type List = VecDeque<Vec<u8>>;

/// Strings, hashes and lists are copy-on-write (`Arc::make_mut` on change), so a snapshot, COPY
/// or GET shares them instead of copying bytes while the keyspace is locked.
pub enum Value {
    Str(Arc<Vec<u8>>),
    Hash(Arc<Hash>),
    List(Arc<List>),
    Tensor(Tensor),
    Model(Arc<Model>),
    Script(Arc<Script>),
}

impl Value {
    /// A string value.
    pub fn string(v: Vec<u8>) -> Value {
        Value::Str(Arc::new(v))
    }

    /// An independent copy (COPY). Strings, hashes and lists are shared until one side changes;
    /// tensors share their immutable data; a copied model or script
    /// shares the loaded framework object but starts its own AI.INFO statistics.
    pub fn duplicate(&self) -> Value {
        match self {
            Value::Str(v) => Value::Str(Arc::clone(v)),
            Value::Hash(h) => Value::Hash(Arc::clone(h)),
            Value::List(l) => Value::List(Arc::clone(l)),
            Value::Tensor(t) => Value::Tensor(t.clone()),
            Value::Model(m) => Value::Model(Arc::new(Model::new(
                m.spec.clone(),
                m.input_names.clone(),
                m.output_names.clone(),
                m.handle.clone(),
            ))),
            Value::Script(s) => Value::Script(Arc::new(Script::new(s.spec.clone(), s.handle.clone()))),
        }
    }

    /// A model or a script: expensive to rebuild, so eviction takes them last.
    pub fn is_ai_object(&self) -> bool {
        matches!(self, Value::Model(_) | Value::Script(_))
    }

    /// The name TYPE answers (RedisAI's module type names for AI values).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Tensor(_) => "AI_TENSOR",
            Value::Model(_) => "AI__MODEL",
            Value::Script(_) => "AI_SCRIPT",
        }
    }

    /// OBJECT ENCODING.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(v) => {
                if v.len() <= 20 && crate::num::parse_i64(v).is_some() {
                    "int"
                } else if v.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            Value::Hash(h) => {
                if h.len() <= 128 {
                    "listpack"
                } else {
                    "hashtable"
                }
            }
            Value::List(_) => "quicklist",
            Value::Tensor(_) | Value::Model(_) | Value::Script(_) => "raw",
        }
    }

    /// Estimated bytes used by the value (MEMORY USAGE adds the key).
    pub fn memory_usage(&self) -> usize {
        match self {
            Value::Str(v) => v.capacity() + 16,
            Value::Hash(h) => h.iter().map(|(k, v)| k.capacity() + v.capacity() + 48).sum::<usize>() + 64,
            Value::List(l) => l.iter().map(|v| v.capacity() + 24).sum::<usize>() + 64,
            Value::Tensor(t) => t.memory_usage(),
            Value::Model(m) => m.memory_usage(),
            Value::Script(s) => s.memory_usage(),
        }
    }
}
