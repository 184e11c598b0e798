//! Binary encoding of keyspace values for snapshots: varint lengths, little-endian numbers, and
//! one layout per value type. Readers check everything and report where the data went wrong.
use std::io::{self, Read, Write};
use std::sync::Arc;

use indexmap::IndexMap;

use crate::ai::{Backend, ModelSpec, ScriptSpec};
use crate::keyspace::Value;
use crate::tensor::buffer::{FillingBuf, SharedBytes};
use crate::tensor::dtype::ALL_DTYPES;
use crate::tensor::Tensor;

pub const T_STR: u8 = 1;
pub const T_HASH: u8 = 2;
pub const T_LIST: u8 = 3;
pub const T_TENSOR: u8 = 4;
pub const T_MODEL: u8 = 5;
pub const T_SCRIPT: u8 = 6;
pub const T_END: u8 = 0xFF;

/// What a snapshot holds for a model or script: enough to load it again.
pub enum Stored {
    Value(Value),
    Model(ModelSpec),
    Script(ScriptSpec),
}

pub fn put_varint(w: &mut impl Write, mut v: u64) -> io::Result<()> {
    let mut buf = [0u8; 10];
    let mut n = 0;
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf[n] = b;
            n += 1;
            break;
        }
        buf[n] = b | 0x80;
        n += 1;
    }
    w.write_all(&buf[..n])
}

pub fn put_bytes(w: &mut impl Write, b: &[u8]) -> io::Result<()> {
    put_varint(w, b.len() as u64)?;
    w.write_all(b)
}

fn put_u64(w: &mut impl Write, v: u64) -> io::Result<()> {
    w.write_all(&v.to_le_bytes())
}

fn put_strs(w: &mut impl Write, v: &[String]) -> io::Result<()> {
    put_varint(w, v.len() as u64)?;
    v.iter().try_for_each(|s| put_bytes(w, s.as_bytes()))
}

/// Writes `value` (type byte first).
pub fn put_value(w: &mut impl Write, value: &Value) -> io::Result<()> {
    match value {
        Value::Str(s) => {
            w.write_all(&[T_STR])?;
            put_bytes(w, s)
        }
        Value::Hash(h) => {
            w.write_all(&[T_HASH])?;
            put_varint(w, h.len() as u64)?;
            h.iter().try_for_each(|(k, v)| put_bytes(w, k).and_then(|_| put_bytes(w, v)))
        }
        Value::List(l) => {
            w.write_all(&[T_LIST])?;
            put_varint(w, l.len() as u64)?;
            l.iter().try_for_each(|v| put_bytes(w, v))
        }
        Value::Tensor(t) => {
            w.write_all(&[T_TENSOR])?;
            let code = ALL_DTYPES.iter().position(|d| *d == t.dtype()).unwrap_or(0) as u8;
            w.write_all(&[code])?;
            put_varint(w, t.shape().len() as u64)?;
            t.shape().iter().try_for_each(|&d| w.write_all(&d.to_le_bytes()))?;
            put_bytes(w, t.bytes())
        }
        Value::Model(m) => {
            w.write_all(&[T_MODEL])?;
            let s = &m.spec;
            w.write_all(&[Backend::ALL.iter().position(|b| *b == s.backend).unwrap_or(0) as u8])?;
            put_bytes(w, s.device.as_bytes())?;
            put_bytes(w, &s.tag)?;
            put_u64(w, s.batchsize)?;
            put_u64(w, s.minbatchsize)?;
            put_u64(w, s.minbatchtimeout)?;
            put_strs(w, &s.inputs)?;
            put_strs(w, &s.outputs)?;
            put_bytes(w, s.blob.as_slice())
        }
        Value::Script(sc) => {
            w.write_all(&[T_SCRIPT])?;
            let s = &sc.spec;
            put_bytes(w, s.device.as_bytes())?;
            put_bytes(w, &s.tag)?;
            put_strs(w, &s.entry_points)?;
            put_bytes(w, s.source.as_bytes())
        }
    }
}

/// Reads what `put_value` wrote; `bad` builds the error for malformed data.
pub struct Decoder<R: Read> {
    pub r: R,
    pub max_len: u64,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl<R: Read> Decoder<R> {
    pub fn u8(&mut self) -> io::Result<u8> {
        let mut b = [0u8; 1];
        self.r.read_exact(&mut b)?;
        Ok(b[0])
    }

    pub fn varint(&mut self) -> io::Result<u64> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.u8()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }

    fn len(&mut self) -> io::Result<usize> {
        let n = self.varint()?;
        if n > self.max_len {
            return Err(bad("length larger than the file"));
        }
        Ok(n as usize)
    }

    pub fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let n = self.len()?;
        let mut v = vec![0u8; n];
        self.r.read_exact(&mut v)?;
        Ok(v)
    }

    /// Bytes straight into an aligned buffer (tensor data, model blobs).
    fn shared(&mut self) -> io::Result<SharedBytes> {
        let n = self.len()?;
        let mut f = FillingBuf::new(n).map_err(|_| bad("cannot allocate"))?;
        let mut chunk = vec![0u8; (64 * 1024).min(n.max(1))];
        while f.remaining() > 0 {
            let k = chunk.len().min(f.remaining());
            self.r.read_exact(&mut chunk[..k])?;
            f.extend_from_slice(&chunk[..k]);
        }
        Ok(f.finish().map_err(|_| bad("short data"))?.into())
    }

    fn string(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?).map_err(|_| bad("invalid UTF-8"))
    }

    fn u64(&mut self) -> io::Result<u64> {
        let mut b = [0u8; 8];
        self.r.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn strs(&mut self) -> io::Result<Vec<String>> {
        let n = self.len()?;
        (0..n).map(|_| self.string()).collect()
    }

    /// A value whose type byte was already read.
    pub fn value(&mut self, t: u8) -> io::Result<Stored> {
        Ok(match t {
            T_STR => Stored::Value(Value::string(self.bytes()?)),
            T_HASH => {
                let n = self.len()?;
                let mut h = IndexMap::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    let k = self.bytes()?;
                    h.insert(k, self.bytes()?);
                }
                Stored::Value(Value::Hash(Arc::new(h)))
            }
            T_LIST => {
                let n = self.len()?;
                Stored::Value(Value::List(Arc::new((0..n).map(|_| self.bytes()).collect::<io::Result<_>>()?)))
            }
            T_TENSOR => {
                let dtype = *ALL_DTYPES.get(self.u8()? as usize).ok_or_else(|| bad("unknown dtype"))?;
                let nd = self.len()?;
                let shape = (0..nd).map(|_| self.u64().map(|d| d as i64)).collect::<io::Result<Vec<_>>>()?;
                let data = self.shared()?;
                Stored::Value(Value::Tensor(Tensor::from_shared(dtype, shape, data).map_err(|e| bad(&e.0))?))
            }
            T_MODEL => {
                let backend = *Backend::ALL.get(self.u8()? as usize).ok_or_else(|| bad("unknown backend"))?;
                let device = self.string()?;
                let queue = crate::ai::parse_device(device.as_bytes()).map_err(|_| bad("bad device"))?;
                let tag = self.bytes()?;
                let (batchsize, minbatchsize, minbatchtimeout) = (self.u64()?, self.u64()?, self.u64()?);
                let inputs = self.strs()?;
                let outputs = self.strs()?;
                let blob = self.shared()?;
                Stored::Model(ModelSpec { backend, device, queue, tag, batchsize, minbatchsize, minbatchtimeout, inputs, outputs, blob })
            }
            T_SCRIPT => {
                let device = self.string()?;
                let queue = crate::ai::parse_device(device.as_bytes()).map_err(|_| bad("bad device"))?;
                let tag = self.bytes()?;
                let entry_points = self.strs()?;
                let source = self.string()?;
                Stored::Script(ScriptSpec { device, queue, tag, entry_points, source })
            }
            _ => return Err(bad("unknown value type")),
        })
    }
}

/// A clone for a snapshot: shares tensors, models and scripts (immutable), copies the rest.
pub fn snapshot_clone(v: &Value) -> Value {
    match v {
        Value::Model(m) => Value::Model(Arc::clone(m)),
        Value::Script(s) => Value::Script(Arc::clone(s)),
        other => other.duplicate(),
    }
}
