//! Reply encoding for RESP2 and RESP3. Replies are appended to a connection's `Out`; large shared
//! payloads (tensor data, model chunks) become segments that are written without copying.
use crate::tensor::buffer::SharedBytes;
use crate::tensor::{DType, Tensor};

/// Payloads at least this big are sent from the stored buffer instead of being copied.
pub const SHARED_MIN: usize = 64 * 1024;

/// A piece of a connection's pending output.
pub enum Segment {
    Bytes(Vec<u8>),
    Shared { data: SharedBytes, off: usize, len: usize },
    /// A stored tensor's data (only in an in-process client's output, `Out::sharing_all`: the
    /// caller gets a view of the tensor itself).
    Tensor(Tensor),
}

impl Segment {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Segment::Bytes(v) => v,
            Segment::Shared { data, off, len } => &data.as_slice()[*off..*off + *len],
            Segment::Tensor(t) => t.bytes(),
        }
    }
}

/// A tensor's data as a bulk string: from its shared buffer when large, else copied.
fn blob_of<R: Reply + ?Sized>(r: &mut R, t: &Tensor) {
    match t.shared_storage() {
        Some((data, off, len)) => r.bulk_shared(data, off, len),
        None => r.bulk(t.bytes()),
    }
}

/// Encodes replies; RESP3 after `HELLO 3`.
pub trait Reply {
    fn raw(&mut self, b: &[u8]);
    fn resp3(&self) -> bool;
    fn shared(&mut self, data: SharedBytes, off: usize, len: usize);
    /// Payloads at least this big are shared instead of copied (`bulk_shared`).
    fn share_min(&self) -> usize {
        SHARED_MIN
    }

    fn simple(&mut self, s: &str) {
        self.raw(b"+");
        self.raw(s.as_bytes());
        self.raw(b"\r\n");
    }
    fn ok(&mut self) {
        self.raw(b"+OK\r\n");
    }
    /// `line` is the whole error text, code included (`ERR ...`, `WRONGTYPE ...`).
    fn error(&mut self, line: &str) {
        self.raw(b"-");
        // an error reply cannot contain newlines
        if line.contains(['\r', '\n']) {
            self.raw(line.replace(['\r', '\n'], " ").as_bytes());
        } else {
            self.raw(line.as_bytes());
        }
        self.raw(b"\r\n");
    }
    fn header(&mut self, prefix: u8, n: i64) {
        let mut b = itoa::Buffer::new();
        self.raw(&[prefix]);
        self.raw(b.format(n).as_bytes());
        self.raw(b"\r\n");
    }
    fn int(&mut self, n: i64) {
        self.header(b':', n);
    }
    fn bulk(&mut self, b: &[u8]) {
        self.header(b'$', b.len() as i64);
        self.raw(b);
        self.raw(b"\r\n");
    }
    fn bulk_str(&mut self, s: &str) {
        self.bulk(s.as_bytes());
    }
    /// A tensor's data (a BLOB reply) as a bulk string.
    fn tensor_blob(&mut self, t: &Tensor) {
        blob_of(self, t);
    }
    /// A bulk string whose bytes are sent from `data` without a copy when large.
    fn bulk_shared(&mut self, data: &SharedBytes, off: usize, len: usize) {
        self.header(b'$', len as i64);
        if len >= self.share_min() {
            self.shared(data.clone(), off, len);
        } else {
            self.raw(&data.as_slice()[off..off + len]);
        }
        self.raw(b"\r\n");
    }
    fn null(&mut self) {
        if self.resp3() {
            self.raw(b"_\r\n");
        } else {
            self.raw(b"$-1\r\n");
        }
    }
    fn null_array(&mut self) {
        if self.resp3() {
            self.raw(b"_\r\n");
        } else {
            self.raw(b"*-1\r\n");
        }
    }
    fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }
    /// A map of `n` pairs (a flat array of 2n in RESP2).
    fn map(&mut self, n: usize) {
        if self.resp3() {
            self.header(b'%', n as i64);
        } else {
            self.header(b'*', 2 * n as i64);
        }
    }
    fn set(&mut self, n: usize) {
        if self.resp3() {
            self.header(b'~', n as i64);
        } else {
            self.header(b'*', n as i64);
        }
    }
    /// A double: RESP3 `,` type, or a bulk string in RESP2 (both `%.17g`, like Redis).
    fn double(&mut self, x: f64) {
        let s = fmt_double(x);
        if self.resp3() {
            self.raw(b",");
            self.raw(s.as_bytes());
            self.raw(b"\r\n");
        } else {
            self.bulk(s.as_bytes());
        }
    }
    fn boolean(&mut self, b: bool) {
        if self.resp3() {
            self.raw(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }
    /// Verbatim text (INFO, CLIENT LIST): `=` in RESP3, a bulk string in RESP2.
    fn verbatim(&mut self, text: &str) {
        if self.resp3() {
            self.header(b'=', text.len() as i64 + 4);
            self.raw(b"txt:");
            self.raw(text.as_bytes());
            self.raw(b"\r\n");
        } else {
            self.bulk(text.as_bytes());
        }
    }
}

/// Output accumulated for a connection during one read event.
pub struct Out {
    buf: Vec<u8>,
    segments: Vec<Segment>,
    pub resp3: bool,
    share_min: usize,
}

impl Default for Out {
    fn default() -> Self {
        Out { buf: Vec::with_capacity(256), segments: Vec::new(), resp3: false, share_min: SHARED_MIN }
    }
}

impl Reply for Out {
    #[inline]
    fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    fn resp3(&self) -> bool {
        self.resp3
    }
    fn share_min(&self) -> usize {
        self.share_min
    }
    fn tensor_blob(&mut self, t: &Tensor) {
        if self.share_min > 0 || t.dtype() == DType::String {
            return blob_of(self, t);
        }
        self.header(b'$', t.byte_len() as i64);
        if !self.buf.is_empty() {
            self.segments.push(Segment::Bytes(std::mem::take(&mut self.buf)));
        }
        self.segments.push(Segment::Tensor(t.clone()));
        self.raw(b"\r\n");
    }
    fn shared(&mut self, data: SharedBytes, off: usize, len: usize) {
        if !self.buf.is_empty() {
            self.segments.push(Segment::Bytes(std::mem::take(&mut self.buf)));
        }
        self.segments.push(Segment::Shared { data, off, len });
    }
}

impl Out {
    pub fn new(resp3: bool) -> Out {
        Out { resp3, ..Default::default() }
    }

    /// Output that shares every stored payload, whatever its size, and passes tensors' data as
    /// the tensors themselves (in-process clients read them without a copy).
    pub fn sharing_all(resp3: bool) -> Out {
        Out { resp3, share_min: 0, ..Default::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.segments.is_empty()
    }

    pub fn len(&self) -> usize {
        self.buf.len() + self.segments.iter().map(|s| s.as_slice().len()).sum::<usize>()
    }

    /// Everything pending: a single byte vector when nothing is shared, else a list of segments.
    pub fn take(&mut self) -> Vec<Segment> {
        let mut segs = std::mem::take(&mut self.segments);
        if !self.buf.is_empty() {
            segs.push(Segment::Bytes(std::mem::replace(&mut self.buf, Vec::with_capacity(256))));
        }
        segs
    }

    /// The small-reply bytes when no segment is pending (the common case), without allocating.
    pub fn plain_bytes(&self) -> Option<&[u8]> {
        if self.segments.is_empty() {
            Some(&self.buf)
        } else {
            None
        }
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.segments.clear();
    }

    /// Everything pending as one contiguous vector (tests, MULTI bookkeeping).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for s in &self.segments {
            v.extend_from_slice(s.as_slice());
        }
        v.extend_from_slice(&self.buf);
        v
    }

    /// Removes everything written after `mark` (a value of `len()` taken earlier); only valid
    /// when no shared segment was added since.
    pub fn truncate(&mut self, mark: usize) {
        let seg_len: usize = self.segments.iter().map(|s| s.as_slice().len()).sum();
        if mark >= seg_len {
            self.buf.truncate(mark - seg_len);
        }
    }
}

/// `printf("%.17g", x)`: the shortest form C would print with 17 significant digits.
pub fn fmt_double(x: f64) -> String {
    fmt_g(x, 17)
}

/// `printf("%.<prec>g", x)`.
pub fn fmt_g(x: f64, prec: usize) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let prec = prec.max(1);
    let sci = format!("{:.*e}", prec - 1, x); // d.ddddde±X
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, x)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g17_matches_c() {
        assert_eq!(fmt_double(1.0), "1");
        assert_eq!(fmt_double(42.0), "42");
        assert_eq!(fmt_double(0.1), "0.10000000000000001");
        assert_eq!(fmt_double(0.1f32 as f64), "0.10000000149011612");
        assert_eq!(fmt_double(1.5), "1.5");
        assert_eq!(fmt_double(-2.25), "-2.25");
        assert_eq!(fmt_double(1e20), "1e+20");
        assert_eq!(fmt_double(1.5e-7), "1.4999999999999999e-07");
        assert_eq!(fmt_double(123456789012345678.0), "1.2345678901234568e+17");
        assert_eq!(fmt_double(0.0001), "0.0001");
        assert_eq!(fmt_g(1.23456, 6), "1.23456");
        assert_eq!(fmt_g(1e-5, 6), "1e-05");
    }

    #[test]
    fn resp2_and_resp3_shapes() {
        let mut o = Out::default();
        o.map(1);
        o.bulk_str("a");
        o.double(1.5);
        o.null();
        assert_eq!(o.to_vec(), b"*2\r\n$1\r\na\r\n$3\r\n1.5\r\n$-1\r\n");
        let mut o = Out { resp3: true, ..Default::default() };
        o.map(1);
        o.bulk_str("a");
        o.double(1.5);
        o.null();
        assert_eq!(o.to_vec(), b"%1\r\n$1\r\na\r\n,1.5\r\n_\r\n");
    }

    #[test]
    fn errors_never_contain_newlines() {
        let mut o = Out::default();
        o.error("ERR a\nb");
        assert_eq!(o.to_vec(), b"-ERR a b\r\n");
    }
}
