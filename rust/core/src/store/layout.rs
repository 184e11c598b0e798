//! How tensors, models and scripts are kept in the store: one string value each, a fixed header
//! (magic, layout version, kind, value id) and then the snapshot codec's encoding of the value.
//! Documented in docs/store-format.md; any change to the bytes bumps LAYOUT_VERSION.
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::conn::Part;
use crate::keyspace::Value;
use crate::persist::codec::{self, Decoder, Stored, T_MODEL, T_SCRIPT, T_TENSOR};
use crate::tensor::dtype::ALL_DTYPES;
use crate::tensor::Tensor;

/// First bytes of every value this server writes (0xFF starts no UTF-8 text).
pub const MAGIC: [u8; 4] = [0xFF, b'R', b'A', b'F'];
pub const LAYOUT_VERSION: u8 = 1;
pub const HEADER_LEN: usize = 24;

/// What a stored value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Tensor = 1,
    Model = 2,
    Script = 3,
}

impl Kind {
    /// The name TYPE answers, as RedisAI's module types are named.
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Tensor => "AI_TENSOR",
            Kind::Model => "AI__MODEL",
            Kind::Script => "AI_SCRIPT",
        }
    }
}

/// Identifies one write of a value: a model or script compiled by a node is reused while the
/// stored id is the one it was compiled from.
pub type ValueId = [u8; 16];

/// Makes value ids: a random per-process prefix and a counter.
pub struct IdMaker {
    prefix: u64,
    next: AtomicU64,
}

impl IdMaker {
    pub fn new(seed: u64) -> IdMaker {
        IdMaker { prefix: seed, next: AtomicU64::new(1) }
    }

    pub fn next(&self) -> ValueId {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.prefix.to_le_bytes());
        id[8..].copy_from_slice(&self.next.fetch_add(1, Relaxed).to_le_bytes());
        id
    }
}

/// The header of a stored value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub id: ValueId,
}

/// Reads a header; None when `b` is not a value in this layout (a plain string, say).
pub fn header(b: &[u8]) -> Option<Header> {
    if b.len() < HEADER_LEN || b[..4] != MAGIC || b[4] != LAYOUT_VERSION {
        return None;
    }
    let kind = match b[5] {
        1 => Kind::Tensor,
        2 => Kind::Model,
        3 => Kind::Script,
        _ => return None,
    };
    let mut id = [0u8; 16];
    id.copy_from_slice(&b[8..24]);
    Some(Header { kind, id })
}

/// Whether a value starts like one of ours (for TYPE, which reads only the first bytes): the
/// magic and a layout version this server does not know count too, so they are not taken for
/// plain strings.
pub fn is_ours(prefix: &[u8]) -> bool {
    prefix.len() >= 4 && prefix[..4] == MAGIC
}

fn header_bytes(kind: Kind, id: ValueId) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN + 32);
    h.extend_from_slice(&MAGIC);
    h.push(LAYOUT_VERSION);
    h.push(kind as u8);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&id);
    h
}

/// The stored form of `value` as request parts: a tensor's data is written from where it is.
pub fn encode(value: &Value, id: ValueId) -> Vec<Part> {
    match value {
        Value::Tensor(t) => encode_tensor(t, id),
        Value::Model(_) => {
            let mut h = header_bytes(Kind::Model, id);
            let _ = codec::put_value(&mut h, value);
            vec![Part::Bytes(h)]
        }
        Value::Script(_) => {
            let mut h = header_bytes(Kind::Script, id);
            let _ = codec::put_value(&mut h, value);
            vec![Part::Bytes(h)]
        }
        // plain values are never written in this layout
        other => {
            let mut h = Vec::new();
            let _ = codec::put_value(&mut h, other);
            vec![Part::Bytes(h)]
        }
    }
}

fn encode_tensor(t: &Tensor, id: ValueId) -> Vec<Part> {
    let mut h = header_bytes(Kind::Tensor, id);
    h.push(T_TENSOR);
    h.push(ALL_DTYPES.iter().position(|d| *d == t.dtype()).unwrap_or(0) as u8);
    let _ = codec::put_varint(&mut h, t.shape().len() as u64);
    for d in t.shape() {
        h.extend_from_slice(&d.to_le_bytes());
    }
    let _ = codec::put_varint(&mut h, t.byte_len() as u64);
    match t.shared_storage() {
        Some((data, off, len)) => vec![Part::Bytes(h), Part::Shared { data: data.clone(), off, len }],
        // small tensors keep their data inline: one copy into the request
        None => {
            h.extend_from_slice(t.bytes());
            vec![Part::Bytes(h)]
        }
    }
}

/// A stored value read back: a tensor whole, or the spec of a model or script (to be loaded).
pub enum Decoded {
    Tensor(Tensor),
    Model(crate::ai::ModelSpec),
    Script(crate::ai::ScriptSpec),
}

/// Why a stored value cannot be read.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a value in this layout: a plain string (WRONGTYPE for AI commands).
    NotOurs,
    /// Ours but damaged or from an unknown layout version.
    Damaged(String),
}

/// Decodes a whole stored value.
pub fn decode(b: &[u8]) -> Result<(Header, Decoded), DecodeError> {
    if !is_ours(b) {
        return Err(DecodeError::NotOurs);
    }
    let h = header(b).ok_or_else(|| DecodeError::Damaged(format!("unknown store layout version {}", b.get(4).copied().unwrap_or(0))))?;
    let mut d = Decoder { r: &b[HEADER_LEN..], max_len: b.len() as u64 };
    let damaged = |e: std::io::Error| DecodeError::Damaged(e.to_string());
    let t = d.u8().map_err(damaged)?;
    let expected = match h.kind {
        Kind::Tensor => T_TENSOR,
        Kind::Model => T_MODEL,
        Kind::Script => T_SCRIPT,
    };
    if t != expected {
        return Err(DecodeError::Damaged("the header and the value disagree on its kind".into()));
    }
    let decoded = match d.value(t).map_err(damaged)? {
        Stored::Value(Value::Tensor(t)) => Decoded::Tensor(t),
        Stored::Model(spec) => Decoded::Model(spec),
        Stored::Script(spec) => Decoded::Script(spec),
        Stored::Value(_) => return Err(DecodeError::Damaged("not an AI value".into())),
    };
    Ok((h, decoded))
}

/// The tag of a model or script of `kind` from the first bytes of its stored value (the tag comes
/// before the blob or source, so a few KiB hold it); None for anything else.
pub fn tag_of(prefix: &[u8], kind: Kind) -> Option<Vec<u8>> {
    let h = header(prefix)?;
    if h.kind != kind {
        return None;
    }
    let mut d = Decoder { r: &prefix[HEADER_LEN..], max_len: prefix.len() as u64 };
    let _type_byte = d.u8().ok()?;
    if kind == Kind::Model {
        let _backend = d.u8().ok()?;
    }
    let _device = d.bytes().ok()?;
    d.bytes().ok()
}

/// Joins request parts (tests and small values).
pub fn concat(parts: &[Part]) -> Vec<u8> {
    let mut v = Vec::new();
    for p in parts {
        match p {
            Part::Bytes(b) => v.extend_from_slice(b),
            Part::Shared { data, off, len } => v.extend_from_slice(&data.as_slice()[*off..*off + *len]),
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::dtype::DType;
    use crate::tensor::TensorInit;

    #[test]
    fn tensors_round_trip_small_and_big() {
        let ids = IdMaker::new(7);
        for n in [3usize, 5000] {
            let data: Vec<u8> = (0..n * 4).map(|i| i as u8).collect();
            let t = Tensor::build(DType::Float, vec![n as i64], TensorInit::Blob(&data), 1 << 30).expect("a tensor");
            let id = ids.next();
            let bytes = concat(&encode(&Value::Tensor(t), id));
            assert_eq!(header(&bytes), Some(Header { kind: Kind::Tensor, id }));
            match decode(&bytes) {
                Ok((_, Decoded::Tensor(back))) => {
                    assert_eq!(back.shape(), &[n as i64]);
                    assert_eq!(back.bytes(), &data[..]);
                }
                _ => panic!("not decoded"),
            }
        }
        assert_ne!(ids.next(), ids.next());
    }

    #[test]
    fn plain_strings_are_not_ours() {
        assert_eq!(decode(b"hello world, a plain string value").err(), Some(DecodeError::NotOurs));
        let mut future = header_bytes(Kind::Tensor, [0; 16]);
        future[4] = 99;
        assert!(matches!(decode(&future), Err(DecodeError::Damaged(_))));
        assert!(is_ours(&future));
    }
}
