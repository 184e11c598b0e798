//! Tensor storage: 64-byte aligned heap buffers, buffers being filled from the socket, and
//! framework-owned (foreign) memory. Stored data is immutable and shared by `Arc<Storage>`.
use std::alloc::{alloc, alloc_zeroed, dealloc, realloc, Layout};
use std::ptr::NonNull;
use std::sync::Arc;

/// Alignment of every buffer we allocate: enough for any dtype and for SIMD loads in the frameworks.
pub const ALIGN: usize = 64;

/// The allocator refused (or the size cannot be laid out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot allocate {0} bytes")]
pub struct AllocError(pub usize);

/// A fully initialised, 64-byte aligned, heap buffer of `len` bytes (at `off` in its allocation,
/// itself a multiple of 64: a buffer a whole command was read into keeps the command's header
/// in front of the data).
pub struct AlignedBuf {
    /// Start of the allocation.
    ptr: NonNull<u8>,
    off: usize,
    len: usize,
    /// Allocated size (>= len); what dealloc is told.
    cap: usize,
}

// SAFETY: AlignedBuf owns its memory exclusively, like Vec<u8>.
unsafe impl Send for AlignedBuf {}
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    fn layout(len: usize) -> Result<Layout, AllocError> {
        Layout::from_size_align(len, ALIGN).map_err(|_| AllocError(len))
    }

    fn raw(len: usize, zero: bool) -> Result<NonNull<u8>, AllocError> {
        if len == 0 {
            // SAFETY: ALIGN is non-zero; a dangling, aligned pointer is valid for zero-length slices.
            return Ok(unsafe { NonNull::new_unchecked(ALIGN as *mut u8) });
        }
        let layout = Self::layout(len)?;
        // SAFETY: layout has non-zero size.
        let p = unsafe {
            if zero {
                alloc_zeroed(layout)
            } else {
                alloc(layout)
            }
        };
        NonNull::new(p).ok_or(AllocError(len))
    }

    /// A zero-filled buffer.
    pub fn zeroed(len: usize) -> Result<Self, AllocError> {
        Ok(AlignedBuf { ptr: Self::raw(len, true)?, off: 0, len, cap: len })
    }

    /// A copy of `data`.
    pub fn from_slice(data: &[u8]) -> Result<Self, AllocError> {
        let mut f = FillingBuf::new(data.len())?;
        f.extend_from_slice(data);
        f.finish().map_err(|_| AllocError(data.len()))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr + off is valid for len initialised bytes for as long as self lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(self.off), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(self.off), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.cap != 0 {
            if let Ok(layout) = Self::layout(self.cap) {
                // SAFETY: allocated by `raw` with this very layout.
                unsafe { dealloc(self.ptr.as_ptr(), layout) }
            }
        }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

/// A buffer of known final size being filled front to back (e.g. straight from the socket).
/// It may have `slack` bytes of spare room after the data, so one socket read can take the bytes
/// that follow (the CRLF and the next command) instead of needing another read; `finish` gives the
/// spare room back. Bytes past `filled` are never read until they are written.
#[derive(Debug)]
pub struct FillingBuf {
    /// Start of the allocation.
    ptr: NonNull<u8>,
    /// Where the data starts in the allocation (a multiple of 64; 0 unless made by `with_lead`).
    off: usize,
    /// Final data length.
    len: usize,
    /// Allocated length (off + len + slack).
    cap: usize,
    /// Data bytes written (from `off`; may run into the slack).
    filled: usize,
}

// SAFETY: FillingBuf owns its memory exclusively, like Vec<u8>.
unsafe impl Send for FillingBuf {}
unsafe impl Sync for FillingBuf {}

impl FillingBuf {
    pub fn new(len: usize) -> Result<Self, AllocError> {
        Self::with_slack(len, 0)
    }

    pub fn with_slack(len: usize, slack: usize) -> Result<Self, AllocError> {
        let cap = len.checked_add(slack).ok_or(AllocError(len))?;
        Ok(FillingBuf { ptr: AlignedBuf::raw(cap, false)?, off: 0, len, cap, filled: 0 })
    }

    /// A buffer for a whole command of which the data is the part after `lead` bytes (the
    /// command's header): reading the command from the start of `lead_window` puts the data
    /// 64-byte aligned, where the finished buffer takes it from without a copy.
    pub fn with_lead(lead: usize, len: usize, slack: usize) -> Result<Self, AllocError> {
        let off = lead.div_ceil(ALIGN) * ALIGN;
        let cap = off.checked_add(len).and_then(|c| c.checked_add(slack)).ok_or(AllocError(len))?;
        Ok(FillingBuf { ptr: AlignedBuf::raw(cap, false)?, off, len, cap, filled: 0 })
    }

    /// Where the next read goes when `got` bytes of the whole command (header of `lead` bytes
    /// first) have arrived: pointer and room.
    pub fn lead_window(&mut self, lead: usize, got: usize) -> (*mut u8, usize) {
        let from = self.off - lead.min(self.off) + got;
        // SAFETY: from <= cap (callers never claim more than the room they were given).
        (unsafe { self.ptr.as_ptr().add(from.min(self.cap)) }, self.cap - from.min(self.cap))
    }

    /// The `got` bytes received from the start of `lead_window`.
    ///
    /// # Safety
    /// `got` bytes must have been written at `lead_window(lead, 0)`.
    pub unsafe fn lead_bytes(&self, lead: usize, got: usize) -> &[u8] {
        let from = self.off - lead.min(self.off);
        // SAFETY: by the caller's promise, these bytes were written.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(from), got.min(self.cap - from)) }
    }

    /// Records that `n` data bytes (from the data's start) are written.
    ///
    /// # Safety
    /// The bytes `off..off + n` must have been written.
    pub unsafe fn assume_filled(&mut self, n: usize) {
        self.filled = n.min(self.cap - self.off);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn filled(&self) -> usize {
        self.filled
    }

    /// Data bytes still missing.
    pub fn remaining(&self) -> usize {
        self.len.saturating_sub(self.filled)
    }

    /// Pointer and length of the writable tail (the missing data plus the slack).
    pub fn window(&mut self) -> (*mut u8, usize) {
        // SAFETY: off + filled <= cap, so the offset stays inside (or one past) the allocation.
        (unsafe { self.ptr.as_ptr().add(self.off + self.filled) }, self.cap - self.off - self.filled)
    }

    /// Marks `n` more bytes of the window as written.
    ///
    /// # Safety
    /// The caller must have written `n` bytes at the start of `window()`.
    pub unsafe fn advance(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.cap - self.off);
    }

    /// Copies as much of `data` as the data part still needs; returns how many bytes were taken.
    pub fn extend_from_slice(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.remaining());
        let (p, _) = self.window();
        // SAFETY: p is valid for at least `remaining()` bytes and does not overlap `data`.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), p, n);
            self.advance(n);
        }
        n
    }

    /// Bytes written past the data (into the slack): they belong to whatever follows.
    pub fn overflow(&self) -> &[u8] {
        if self.filled <= self.len {
            return &[];
        }
        // SAFETY: data bytes len..filled were written.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(self.off + self.len), self.filled - self.len) }
    }

    /// The finished buffer (slack returned to the allocator when it can be), or `self` back if
    /// data is missing.
    pub fn finish(self) -> Result<AlignedBuf, FillingBuf> {
        if self.filled < self.len {
            return Err(self);
        }
        let me = std::mem::ManuallyDrop::new(self);
        let (mut ptr, mut cap) = (me.ptr, me.cap);
        let used = me.off + me.len;
        if cap > used && me.len > 0 {
            if let Ok(layout) = AlignedBuf::layout(cap) {
                // SAFETY: ptr was allocated with `layout`; the new size is non-zero and smaller.
                // realloc keeps the contents and the alignment, so `off` stays valid.
                if let Some(p) = NonNull::new(unsafe { realloc(ptr.as_ptr(), layout, used) }) {
                    ptr = p;
                    cap = used;
                }
            }
        }
        Ok(AlignedBuf { ptr, off: me.off, len: me.len, cap })
    }
}

impl Drop for FillingBuf {
    fn drop(&mut self) {
        if self.cap != 0 {
            if let Ok(layout) = AlignedBuf::layout(self.cap) {
                // SAFETY: allocated by `raw` with this layout.
                unsafe { dealloc(self.ptr.as_ptr(), layout) }
            }
        }
    }
}

/// Memory owned by something else (a framework's output array); `owner` keeps it alive.
pub struct ForeignBuf {
    ptr: *const u8,
    len: usize,
    _owner: Box<dyn Send + Sync>,
}

// SAFETY: the owner guarantees the memory stays valid and unchanged while it lives.
unsafe impl Send for ForeignBuf {}
unsafe impl Sync for ForeignBuf {}

impl ForeignBuf {
    /// # Safety
    /// `ptr` must be valid for reads of `len` bytes, unchanged, for as long as `owner` lives.
    pub unsafe fn new(ptr: *const u8, len: usize, owner: Box<dyn Send + Sync>) -> Self {
        ForeignBuf { ptr, len, _owner: owner }
    }
}

/// Immutable bytes of a stored tensor (or model blob chunk).
pub enum Storage {
    Owned(AlignedBuf),
    Foreign(ForeignBuf),
}

impl Storage {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Storage::Owned(b) => b.as_slice(),
            // SAFETY: see ForeignBuf::new.
            Storage::Foreign(f) => unsafe { std::slice::from_raw_parts(f.ptr, f.len) },
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Storage::Owned(b) => b.len(),
            Storage::Foreign(f) => f.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Shared immutable bytes.
pub type SharedBytes = Arc<Storage>;

impl From<AlignedBuf> for SharedBytes {
    fn from(b: AlignedBuf) -> Self {
        Arc::new(Storage::Owned(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_zeroed() {
        let b = AlignedBuf::zeroed(1000).expect("an allocation");
        assert_eq!(b.as_slice().as_ptr() as usize % ALIGN, 0);
        assert!(b.as_slice().iter().all(|&x| x == 0));
        let e = AlignedBuf::zeroed(0).expect("an allocation");
        assert!(e.as_slice().is_empty());
    }

    #[test]
    fn filling() {
        let mut f = FillingBuf::new(5).expect("an allocation");
        assert_eq!(f.extend_from_slice(b"abc"), 3);
        let f = f.finish().unwrap_err();
        let mut f = f;
        assert_eq!(f.extend_from_slice(b"defg"), 2);
        assert_eq!(f.finish().expect("an allocation").as_slice(), b"abcde");
    }

    #[test]
    fn huge_allocation_fails_cleanly() {
        assert!(AlignedBuf::zeroed(usize::MAX - 10).is_err());
    }
}
