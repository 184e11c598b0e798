//! The value types a key can hold, their Redis type names and size estimates.
use std::collections::VecDeque;

use indexmap::IndexMap;

use std::sync::Arc;

use crate::ai::{Model, Script};
use crate::tensor::Tensor;
use triomphe::ThinArc;

pub type Hash = IndexMap<Vec<u8>, Vec<u8>>;
pub type List = VecDeque<Vec<u8>>;

/// Strings, hashes and lists are copy-on-write (`Arc::make_mut` / `Str`'s writers on change), so
/// a snapshot, COPY or GET shares them instead of copying bytes while the keyspace is locked.
pub enum Value {
    Str(Str),
    Hash(Arc<Hash>),
    List(Arc<List>),
    Tensor(Tensor),
    Model(Arc<Model>),
    Script(Arc<Script>),
}

impl Value {
    /// A string value.
    pub fn string(v: impl AsRef<[u8]>) -> Value {
        Value::Str(Str::new(v.as_ref()))
    }

    /// An independent copy (COPY). Strings, hashes and lists are shared until one side changes;
    /// tensors share their immutable data; a copied model or script
    /// shares the loaded framework object but starts its own AI.INFO statistics.
    pub fn duplicate(&self) -> Value {
        match self {
            Value::Str(v) => Value::Str(v.clone()),
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
            Value::Str(v) => v.capacity() + 24,
            Value::Hash(h) => h.iter().map(|(k, v)| k.capacity() + v.capacity() + 48).sum::<usize>() + 64,
            Value::List(l) => l.iter().map(|v| v.capacity() + 24).sum::<usize>() + 64,
            Value::Tensor(t) => t.memory_usage(),
            Value::Model(m) => m.memory_usage(),
            Value::Script(s) => s.memory_usage(),
        }
    }
}

/// A string value: one shared allocation holding the length, the capacity and the bytes (a
/// 16-byte string takes 40 bytes in all). Clones share it; the writers copy it first when it is
/// shared, and grow it by doubling, so APPEND stays amortised O(1) as in Redis.
#[derive(Clone)]
pub struct Str(ThinArc<usize, u8>);

impl Str {
    pub fn new(bytes: &[u8]) -> Str {
        Str(ThinArc::from_header_and_slice(bytes.len(), bytes))
    }

    /// A copy of the first `len` bytes with room for `cap` (zeros after `len`).
    fn with_room(bytes: &[u8], len: usize, cap: usize) -> Str {
        let mut room = Vec::with_capacity(cap.max(len));
        room.extend_from_slice(&bytes[..len.min(bytes.len())]);
        room.resize(cap.max(len), 0);
        Str(ThinArc::from_header_and_slice(len, &room))
    }

    pub fn len(&self) -> usize {
        self.0.header.header
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes allocated for the data (MEMORY USAGE).
    pub fn capacity(&self) -> usize {
        self.0.slice.len()
    }

    /// Makes the string `new_len` bytes long (zero-filled where it grows) and lets `write`
    /// change its bytes; copies it first if another value shares it or it has no room.
    fn rewrite(&mut self, new_len: usize, write: impl FnOnce(&mut [u8])) -> usize {
        let unique = self.0.with_arc_mut(|a| triomphe::Arc::get_mut(a).is_some());
        if !unique || new_len > self.capacity() {
            let cap = if new_len > self.capacity() { new_len.max(self.capacity() * 2) } else { self.capacity() };
            *self = Str::with_room(&self.0.slice, self.len(), cap);
        }
        let old_len = self.len();
        self.0.with_arc_mut(|a| {
            if let Some(inner) = triomphe::Arc::get_mut(a) {
                *inner.header_mut() = new_len;
                let buf = &mut inner.slice_mut()[..new_len];
                if new_len > old_len {
                    buf[old_len..].fill(0);
                }
                write(buf);
            }
        });
        self.len()
    }

    /// APPEND: adds `more` at the end; returns the new length.
    pub fn append(&mut self, more: &[u8]) -> usize {
        let at = self.len();
        self.rewrite(at + more.len(), |buf| buf[at..].copy_from_slice(more))
    }

    /// SETRANGE: writes `data` at `off`, zero-padding any gap; returns the new length.
    pub fn write_at(&mut self, off: usize, data: &[u8]) -> usize {
        let len = self.len().max(off + data.len());
        self.rewrite(len, |buf| buf[off..off + data.len()].copy_from_slice(data))
    }
}

impl Default for Str {
    fn default() -> Self {
        Str::new(&[])
    }
}

impl std::ops::Deref for Str {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0.slice[..self.0.header.header]
    }
}

impl std::fmt::Debug for Str {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Str({:?})", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_appends_in_place_and_copies_when_shared() {
        let mut a = Str::new(b"ab");
        assert_eq!((&a[..], a.capacity()), (&b"ab"[..], 2));
        assert_eq!(a.append(b"cd"), 4);
        assert_eq!(a.capacity(), 4);
        assert_eq!(a.append(b"e"), 5);
        assert_eq!(a.capacity(), 8); // doubled
        let shared = a.clone();
        assert_eq!(a.append(b"f"), 6);
        assert_eq!((&a[..], &shared[..]), (&b"abcdef"[..], &b"abcde"[..]));
        assert_eq!(a.write_at(8, b"xy"), 10);
        assert_eq!(&a[..], b"abcdef\0\0xy");
        assert_eq!(a.write_at(0, b"Z"), 10);
        assert_eq!(&a[..3], b"Zbc");
        assert!(Str::default().is_empty());
    }
}
