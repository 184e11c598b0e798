//! Tensors: dtype, shape and immutable data in one shared allocation (or, from 32 KiB, a shared aligned buffer). Building them from BLOB/VALUES
//! arguments with RedisAI's checks and messages, and writing their META/BLOB/VALUES replies.
pub mod buffer;
pub mod dtype;

use std::sync::Arc;

use buffer::{AlignedBuf, SharedBytes, Storage};
use triomphe::ThinArc;
pub use dtype::DType;

use crate::error::{CmdError, CmdResult};
use crate::num::{parse_f64, parse_i64};
use crate::resp::Reply;

/// An immutable tensor. Cloning shares it (one reference count). One allocation holds the
/// header, the shape and, for tensors under `INLINE_LIMIT` bytes (not STRING), the data itself,
/// 8-byte aligned; larger ones point at a 64-byte aligned shared buffer.
#[derive(Clone)]
pub struct Tensor(ThinArc<Head, i64>);

/// Data under this size is kept inside the tensor's own allocation: it was copied out of the read
/// buffer anyway (bulks from `resp::input::BIG_BULK` up arrive in an aligned buffer of their
/// own, which larger tensors keep without a copy).
pub const INLINE_LIMIT: usize = 32 * 1024;

struct Head {
    dtype: DType,
    /// Dimensions; an inline tensor's data (element count x dtype size bytes) follows them in the slice.
    ndim: u32,
    /// The buffer of a large (or STRING) tensor; its offset and length follow the shape in the
    /// slice, then (STRING) where each element starts.
    storage: Option<SharedBytes>,
}

/// What a large tensor's data is: a range of a shared buffer.
struct SharedData {
    data: SharedBytes,
    off: usize,
    len: usize,
    /// STRING tensors: where each element starts in `bytes()` (each ends with a NUL).
    str_offsets: Option<Vec<usize>>,
}

/// A large tensor's data, as stored.
struct SharedRef<'a> {
    data: &'a SharedBytes,
    off: usize,
    len: usize,
    str_offsets: &'a [i64],
}

fn cannot_allocate() -> CmdError {
    CmdError::err("cannot allocate the tensor")
}

fn ndim_of(shape: &[i64]) -> CmdResult<u32> {
    u32::try_from(shape.len()).map_err(|_| CmdError::err("invalid tensor shape"))
}

/// Where a tensor's data comes from.
pub enum TensorInit<'a> {
    /// No data: zero-filled (empty strings for STRING).
    Zeros,
    /// Raw bytes to copy.
    Blob(&'a [u8]),
    /// Raw bytes already in an aligned buffer of ours: kept without a copy.
    OwnedBlob(AlignedBuf),
    /// One argument per element.
    Values(Vec<&'a [u8]>),
}

fn invalid_value() -> CmdError {
    CmdError::err("invalid value")
}

/// Number of elements of a shape, or None if it overflows.
pub fn element_count(shape: &[i64]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?))
}

impl Tensor {
    /// Builds a tensor with RedisAI's validation. `max_bytes` bounds the data size.
    pub fn build(dtype: DType, shape: Vec<i64>, init: TensorInit<'_>, max_bytes: usize) -> CmdResult<Tensor> {
        let count = element_count(&shape)
            .ok_or_else(|| CmdError::err("invalid or negative value found in tensor shape"))?;
        let too_big = |n: usize| CmdError::err(format!("tensor of {n} bytes exceeds max-tensor-bytes ({max_bytes})"));
        if dtype == DType::String {
            return Self::build_strings(shape, count, init, max_bytes);
        }
        let nbytes = count.checked_mul(dtype.size()).ok_or_else(|| too_big(usize::MAX))?;
        let alloc_err = |_| CmdError::err(format!("cannot allocate {nbytes} bytes for the tensor"));
        if matches!(init, TensorInit::Zeros | TensorInit::Values(_)) && nbytes > max_bytes {
            return Err(too_big(nbytes));
        }
        if nbytes < INLINE_LIMIT {
            return Self::build_inline(dtype, &shape, init, nbytes);
        }
        let buf = match init {
            TensorInit::Zeros => {
                if nbytes > max_bytes {
                    return Err(too_big(nbytes));
                }
                AlignedBuf::zeroed(nbytes).map_err(alloc_err)?
            }
            TensorInit::Blob(b) => {
                check_blob(dtype, b, nbytes)?;
                AlignedBuf::from_slice(b).map_err(alloc_err)?
            }
            TensorInit::OwnedBlob(b) => {
                check_blob(dtype, b.as_slice(), nbytes)?;
                b
            }
            TensorInit::Values(vals) => {
                if nbytes > max_bytes {
                    return Err(too_big(nbytes));
                }
                let mut buf = AlignedBuf::zeroed(nbytes).map_err(alloc_err)?;
                fill_values(dtype, &vals, buf.as_mut_slice())?;
                buf
            }
        };
        let len = buf.len();
        Self::shared(dtype, &shape, SharedData { data: Arc::new(Storage::Owned(buf)), off: 0, len, str_offsets: None })
    }

    /// A small tensor with its data inside its own allocation.
    fn build_inline(dtype: DType, shape: &[i64], init: TensorInit<'_>, nbytes: usize) -> CmdResult<Tensor> {
        match init {
            TensorInit::Zeros => Self::inline(dtype, shape, &vec![0u8; nbytes]),
            TensorInit::Blob(b) => {
                check_blob(dtype, b, nbytes)?;
                Self::inline(dtype, shape, b)
            }
            TensorInit::OwnedBlob(b) => {
                check_blob(dtype, b.as_slice(), nbytes)?;
                Self::inline(dtype, shape, b.as_slice())
            }
            TensorInit::Values(vals) => {
                let mut data = vec![0u8; nbytes];
                fill_values(dtype, &vals, &mut data)?;
                Self::inline(dtype, shape, &data)
            }
        }
    }

    /// A tensor holding a copy of `data` inline (`data.len() < INLINE_LIMIT`, the size of its shape).
    fn inline(dtype: DType, shape: &[i64], data: &[u8]) -> CmdResult<Tensor> {
        let head = Head { dtype, ndim: ndim_of(shape)?, storage: None };
        let n = shape.len() + data.len().div_ceil(8);
        // the words are laid out in a buffer first, so the allocation is filled by one memcpy
        let fill = |words: &mut [i64]| {
            let (dims, rest) = words.split_at_mut(shape.len());
            dims.copy_from_slice(shape);
            let chunks = data.chunks_exact(8);
            let tail = chunks.remainder();
            for (w, c) in rest.iter_mut().zip(chunks) {
                *w = i64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            }
            if let Some(last) = rest.last_mut().filter(|_| !tail.is_empty()) {
                let mut b = [0u8; 8];
                b[..tail.len()].copy_from_slice(tail);
                *last = i64::from_ne_bytes(b);
            }
        };
        let made = if n <= 32 {
            let mut words = [0i64; 32];
            fill(&mut words[..n]);
            ThinArc::try_from_header_and_slice(head, &words[..n])
        } else {
            let mut words = vec![0i64; n];
            fill(&mut words);
            ThinArc::try_from_header_and_slice(head, &words)
        };
        made.map(Tensor).map_err(|_| cannot_allocate())
    }

    fn shared(dtype: DType, shape: &[i64], data: SharedData) -> CmdResult<Tensor> {
        let offsets = data.str_offsets.unwrap_or_default();
        let head = Head { dtype, ndim: ndim_of(shape)?, storage: Some(data.data) };
        let n = shape.len() + 2 + offsets.len();
        let items = shape.iter().copied().chain([data.off as i64, data.len as i64]).chain(offsets.into_iter().map(|o| o as i64));
        ThinArc::try_from_header_and_iter(head, ExactLen(items, n)).map(Tensor).map_err(|_| cannot_allocate())
    }

    /// Data bytes of an inline tensor: its element count times the element size.
    fn inline_len(&self) -> usize {
        self.count() * self.dtype().size()
    }

    /// A large tensor's shared buffer and its byte range in it, for writers that send stored
    /// bytes without copying them (None: the data is inline).
    pub fn shared_storage(&self) -> Option<(&SharedBytes, usize, usize)> {
        self.shared_part().map(|sd| (sd.data, sd.off, sd.len))
    }

    /// The shared buffer range of a large tensor (None: the data is inline).
    fn shared_part(&self) -> Option<SharedRef<'_>> {
        let data = self.head().storage.as_ref()?;
        let rest = &self.0.slice[self.head().ndim as usize..];
        match rest {
            [off, len, offsets @ ..] => Some(SharedRef { data, off: *off as usize, len: *len as usize, str_offsets: offsets }),
            _ => None,
        }
    }

    fn head(&self) -> &Head {
        &self.0.header.header
    }

    fn build_strings(shape: Vec<i64>, count: usize, init: TensorInit<'_>, max_bytes: usize) -> CmdResult<Tensor> {
        let count_err = || CmdError::err("Number of string elements in data blob does not match tensor length");
        let (buf, offsets) = match init {
            TensorInit::Zeros => {
                if count > max_bytes {
                    return Err(CmdError::err(format!("tensor of {count} bytes exceeds max-tensor-bytes ({max_bytes})")));
                }
                let buf = AlignedBuf::zeroed(count).map_err(|_| CmdError::err("cannot allocate the tensor"))?;
                (buf, (0..count).collect::<Vec<_>>())
            }
            TensorInit::Values(vals) => {
                let mut blob = Vec::new();
                let mut offsets = Vec::with_capacity(vals.len());
                for v in vals {
                    let body = v.strip_suffix(b"\0").unwrap_or(v);
                    if body.contains(&0) {
                        return Err(CmdError::err("C-string value contains null character"));
                    }
                    offsets.push(blob.len());
                    blob.extend_from_slice(body);
                    blob.push(0);
                }
                let buf = AlignedBuf::from_slice(&blob).map_err(|_| CmdError::err("cannot allocate the tensor"))?;
                (buf, offsets)
            }
            TensorInit::Blob(b) => {
                let offsets = string_offsets(b, count).ok_or_else(count_err)?;
                (AlignedBuf::from_slice(b).map_err(|_| CmdError::err("cannot allocate the tensor"))?, offsets)
            }
            TensorInit::OwnedBlob(b) => {
                let offsets = string_offsets(b.as_slice(), count).ok_or_else(count_err)?;
                (b, offsets)
            }
        };
        let len = buf.len();
        let data = SharedData { data: Arc::new(Storage::Owned(buf)), off: 0, len, str_offsets: Some(offsets) };
        Self::shared(DType::String, &shape, data)
    }

    /// Wraps bytes produced elsewhere (a backend's output), checking their size against the shape.
    pub fn from_shared(dtype: DType, shape: Vec<i64>, data: SharedBytes) -> CmdResult<Tensor> {
        let count = element_count(&shape).ok_or_else(|| CmdError::err("invalid tensor shape"))?;
        let len = data.len();
        let str_offsets = if dtype == DType::String {
            Some(string_offsets(data.as_slice(), count).ok_or_else(|| CmdError::err("malformed STRING tensor data"))?)
        } else {
            if count.checked_mul(dtype.size()) != Some(len) {
                return Err(CmdError::err("data length does not match tensor shape and type"));
            }
            if len < INLINE_LIMIT {
                // small outputs are copied in: the tensor no longer keeps the producer's buffer
                return Self::inline(dtype, &shape, data.as_slice());
            }
            None
        };
        Self::shared(dtype, &shape, SharedData { data, off: 0, len, str_offsets })
    }

    /// Rows `start..start+rows` of dimension 0, sharing this tensor's storage.
    pub fn slice_rows(&self, start: usize, rows: usize) -> Result<Tensor, String> {
        let d0 = *self.shape().first().ok_or("ERR cannot split a scalar output into batch rows")? as usize;
        if self.dtype() == DType::String {
            return Err("ERR STRING outputs cannot be split into batch rows".into());
        }
        if start + rows > d0 {
            return Err("ERR Model did not generate the expected batch size".into());
        }
        let row_bytes = self.byte_len().checked_div(d0).unwrap_or(0);
        let mut shape = self.shape().to_vec();
        shape[0] = rows as i64;
        let (from, len) = (start * row_bytes, rows * row_bytes);
        let made = match self.shared_part() {
            Some(sd) if len >= INLINE_LIMIT => {
                Self::shared(self.dtype(), &shape, SharedData { data: sd.data.clone(), off: sd.off + from, len, str_offsets: None })
            }
            _ => Self::inline(self.dtype(), &shape, &self.bytes()[from..from + len]),
        };
        made.map_err(|e| e.0)
    }

    pub fn dtype(&self) -> DType {
        self.head().dtype
    }

    pub fn shape(&self) -> &[i64] {
        &self.0.slice[..self.head().ndim as usize]
    }

    pub fn count(&self) -> usize {
        element_count(self.shape()).unwrap_or(0)
    }

    /// The tensor's raw bytes (RedisAI's BLOB).
    pub fn bytes(&self) -> &[u8] {
        match self.shared_part() {
            Some(sd) => &sd.data.as_slice()[sd.off..sd.off + sd.len],
            None => {
                let words = &self.0.slice[self.head().ndim as usize..];
                let len = self.inline_len().min(words.len() * 8);
                // SAFETY: `words` is initialised memory of at least `len` bytes, and u8 has no
                // alignment or validity requirements; the borrow keeps the allocation alive.
                unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), len) }
            }
        }
    }

    pub fn byte_len(&self) -> usize {
        match self.shared_part() {
            Some(sd) => sd.len,
            None => self.inline_len(),
        }
    }

    /// STRING element `i` without its NUL.
    pub fn string_at(&self, i: usize) -> &[u8] {
        let Some(sd) = self.shared_part() else { return &[] };
        let (offs, b) = (sd.str_offsets, self.bytes());
        let Some(&start) = offs.get(i) else { return &[] };
        let start = (start as usize).min(b.len());
        let end = offs.get(i + 1).map_or(b.len(), |&e| (e as usize).clamp(start, b.len()));
        let s = &b[start..end];
        s.strip_suffix(b"\0").unwrap_or(s)
    }

    /// Approximate memory used (MEMORY USAGE, INFO used_memory).
    pub fn memory_usage(&self) -> usize {
        let header = 32 + self.shape().len() * 8;
        match self.shared_part() {
            Some(sd) => header + 16 + 56 + sd.len + sd.str_offsets.len() * 8,
            None => header + self.byte_len().div_ceil(8) * 8,
        }
    }

    /// `dtype <T> shape [dims]`: the META part (a flat array even in RESP3, as RedisAI).
    pub fn reply_meta_fields(&self, r: &mut dyn Reply) {
        r.bulk_str("dtype");
        r.bulk_str(self.dtype().name());
        r.bulk_str("shape");
        r.array(self.shape().len());
        for &d in self.shape() {
            r.int(d);
        }
    }

    pub fn reply_blob(&self, r: &mut dyn Reply) {
        r.tensor_blob(self);
    }

    pub fn reply_values(&self, r: &mut dyn Reply) {
        let n = self.count();
        r.array(n);
        let b = self.bytes();
        match self.dtype() {
            DType::Float => b.chunks_exact(4).for_each(|c| r.double(f32::from_ne_bytes([c[0], c[1], c[2], c[3]]) as f64)),
            DType::Double => b.chunks_exact(8).for_each(|c| r.double(f64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))),
            DType::Int8 => b.iter().for_each(|&x| r.int(x as i8 as i64)),
            DType::Uint8 | DType::Bool => b.iter().for_each(|&x| r.int(x as i64)),
            DType::Int16 => b.chunks_exact(2).for_each(|c| r.int(i16::from_ne_bytes([c[0], c[1]]) as i64)),
            DType::Uint16 => b.chunks_exact(2).for_each(|c| r.int(u16::from_ne_bytes([c[0], c[1]]) as i64)),
            DType::Int32 => b.chunks_exact(4).for_each(|c| r.int(i32::from_ne_bytes([c[0], c[1], c[2], c[3]]) as i64)),
            DType::Int64 => b.chunks_exact(8).for_each(|c| r.int(i64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))),
            DType::String => (0..n).for_each(|i| r.bulk(self.string_at(i))),
        }
    }
}

/// An iterator with a known length (a chain of two exact-size iterators is not ExactSizeIterator).
struct ExactLen<I>(I, usize);

impl<I: Iterator> Iterator for ExactLen<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        let x = self.0.next()?;
        self.1 = self.1.saturating_sub(1);
        Some(x)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.1, Some(self.1))
    }
}

impl<I: Iterator> ExactSizeIterator for ExactLen<I> {}

/// Checks a BLOB for a fixed-size dtype (size, BOOL values).
fn check_blob(dtype: DType, b: &[u8], nbytes: usize) -> CmdResult {
    if b.len() != nbytes {
        return Err(CmdError::err("data length does not match tensor shape and type"));
    }
    if dtype == DType::Bool && b.iter().any(|&x| x > 1) {
        return Err(CmdError::err("BOOL tensor elements must be 0 or 1"));
    }
    Ok(())
}

/// Start offsets of `count` NUL-terminated strings filling `b` exactly.
fn string_offsets(b: &[u8], count: usize) -> Option<Vec<usize>> {
    if count == 0 {
        return b.is_empty().then(Vec::new);
    }
    if b.last() != Some(&0) {
        return None;
    }
    let mut offs = Vec::with_capacity(count);
    let mut start = 0;
    for i in memchr::memchr_iter(0, b) {
        if offs.len() == count {
            return None;
        }
        offs.push(start);
        start = i + 1;
    }
    (offs.len() == count).then_some(offs)
}

/// Parses one VALUES argument per element into `out`.
fn fill_values(dtype: DType, vals: &[&[u8]], out: &mut [u8]) -> CmdResult {
    let size = dtype.size();
    for (v, dst) in vals.iter().zip(out.chunks_exact_mut(size)) {
        match dtype {
            DType::Float => dst.copy_from_slice(&(parse_f64(v).ok_or_else(invalid_value)? as f32).to_ne_bytes()),
            DType::Double => dst.copy_from_slice(&parse_f64(v).ok_or_else(invalid_value)?.to_ne_bytes()),
            _ => {
                let x = parse_i64(v).ok_or_else(invalid_value)?;
                let (lo, hi) = dtype.int_range().ok_or_else(invalid_value)?;
                if x < lo || x > hi {
                    return Err(invalid_value());
                }
                dst.copy_from_slice(&x.to_ne_bytes()[..size]);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::Out;

    fn vals(v: &[&'static str]) -> TensorInit<'static> {
        TensorInit::Values(v.iter().map(|s| s.as_bytes()).collect())
    }

    #[test]
    fn float_values_and_blob() {
        let t = Tensor::build(DType::Float, vec![2, 2], vals(&["1", "2", "3", "4"]), 1 << 20).expect("a tensor");
        assert_eq!(t.bytes(), b"\x00\x00\x80?\x00\x00\x00@\x00\x00@@\x00\x00\x80@");
        let mut o = Out::default();
        t.reply_values(&mut o);
        assert_eq!(o.to_vec(), b"*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n");
    }

    #[test]
    fn int_ranges() {
        assert!(Tensor::build(DType::Int8, vec![2], vals(&["-1", "-128"]), 64).is_ok());
        assert!(Tensor::build(DType::Int8, vec![1], vals(&["128"]), 64).is_err());
        assert!(Tensor::build(DType::Uint8, vec![1], vals(&["-1"]), 64).is_err());
        assert!(Tensor::build(DType::Int32, vec![1], vals(&["1.87"]), 64).is_err());
        assert!(Tensor::build(DType::Bool, vec![2], vals(&["1", "2"]), 64).is_err());
        let t = Tensor::build(DType::Int64, vec![1], vals(&["-9223372036854775808"]), 64).expect("a tensor");
        assert_eq!(t.bytes(), i64::MIN.to_ne_bytes());
    }

    #[test]
    fn blob_checks() {
        let e = Tensor::build(DType::Float, vec![2], TensorInit::Blob(b"\0\0\0"), 64).err().expect("an error");
        assert_eq!(e.0, "ERR data length does not match tensor shape and type");
        let e = Tensor::build(DType::Bool, vec![2], TensorInit::Blob(b"\x02\x01"), 64).err().expect("an error");
        assert_eq!(e.0, "ERR BOOL tensor elements must be 0 or 1");
    }

    #[test]
    fn strings() {
        let t = Tensor::build(DType::String, vec![2], TensorInit::Blob(b"one\0\0"), 64).expect("a tensor");
        assert_eq!(t.string_at(0), b"one");
        assert_eq!(t.string_at(1), b"");
        for bad in [&b"single c-string\0"[..], b"one\0two\0three\0", b"C-string\0followed by a non C-string"] {
            let e = Tensor::build(DType::String, vec![2], TensorInit::Blob(bad), 64).err().expect("an error");
            assert_eq!(e.0, "ERR Number of string elements in data blob does not match tensor length");
        }
        let t = Tensor::build(DType::String, vec![2], vals(&["a", ""]), 64).expect("a tensor");
        assert_eq!(t.bytes(), b"a\0\0");
        let e = Tensor::build(DType::String, vec![1], TensorInit::Values(vec![b"in\0valid"]), 64).err().expect("an error");
        assert_eq!(e.0, "ERR C-string value contains null character");
        let z = Tensor::build(DType::String, vec![3], TensorInit::Zeros, 64).expect("a tensor");
        assert_eq!(z.string_at(2), b"");
    }

    #[test]
    fn small_tensors_inline_large_ones_shared_and_aligned() {
        assert_eq!(std::mem::size_of::<Head>(), 16);
        let small = Tensor::build(DType::Float, vec![1, 4], TensorInit::Blob(&[1u8; 16]), 1 << 20).expect("a tensor");
        assert!(small.shared_part().is_none());
        assert_eq!((small.bytes(), small.shape(), small.byte_len()), (&[1u8; 16][..], &[1i64, 4][..], 16));
        let odd = Tensor::build(DType::Uint8, vec![3], vals(&["1", "2", "3"]), 64).expect("a tensor");
        assert_eq!(odd.bytes(), &[1, 2, 3]);
        let data: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        let big = Tensor::build(DType::Uint8, vec![64, 1024], TensorInit::Blob(&data), 1 << 20).expect("a tensor");
        assert!(big.shared_part().is_some());
        assert_eq!(big.bytes().as_ptr() as usize % buffer::ALIGN, 0);
        let rows = big.slice_rows(10, 40).expect("rows");
        assert!(rows.shared_part().is_some());
        assert_eq!((rows.shape(), rows.bytes()), (&[40i64, 1024][..], &data[10240..51200]));
        let few = big.slice_rows(1, 2).expect("rows");
        assert!(few.shared_part().is_none());
        assert_eq!(few.bytes(), &data[1024..3072]);
        let mid_size = Tensor::build(DType::Uint8, vec![4096], TensorInit::Blob(&data[..4096]), 1 << 20).expect("a tensor");
        assert!(mid_size.shared_part().is_none());
        assert_eq!(mid_size.bytes(), &data[..4096]);
        let ints = Tensor::build(DType::Int32, vec![4, 2], vals(&["1", "2", "3", "4", "5", "6", "7", "8"]), 64).expect("a tensor");
        let mid = ints.slice_rows(1, 2).expect("rows");
        assert_eq!(mid.bytes(), [3i32, 4, 5, 6].iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<u8>>());
        let out = Tensor::from_shared(DType::Uint8, vec![2], AlignedBuf::from_slice(b"ab").expect("a buffer").into()).expect("a tensor");
        assert!(out.shared_part().is_none());
        assert_eq!(out.bytes(), b"ab");
    }

    #[test]
    fn zeros_respect_the_limit() {
        assert!(Tensor::build(DType::Float, vec![1000], TensorInit::Zeros, 100).is_err());
        let z = Tensor::build(DType::Double, vec![3], TensorInit::Zeros, 100).expect("a tensor");
        assert_eq!(z.bytes(), &[0u8; 24]);
    }
}
