//! `SharedView`: a read-only Python buffer over shared Rust bytes (tensor data, model chunks),
//! handed to the transport so large replies are written without a copy, and to in-process
//! callers as a typed, shaped buffer (`numpy.asarray(view)`) over a stored tensor's data.
use std::os::raw::c_int;

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use redisai_core::tensor::buffer::SharedBytes;
use redisai_core::tensor::DType;

use crate::tensor_view::{c_layout, fill_typed_view};

/// Element type and C-ordered shape of a typed view.
struct Layout {
    dtype: DType,
    shape: Vec<ffi::Py_ssize_t>,
    strides: Vec<ffi::Py_ssize_t>,
}

#[pyclass(frozen, module = "redisai_fast._core")]
pub struct SharedView {
    data: SharedBytes,
    off: usize,
    len: usize,
    /// None: plain bytes.
    layout: Option<Layout>,
}

impl SharedView {
    pub fn new(data: SharedBytes, off: usize, len: usize) -> Self {
        SharedView { data, off, len, layout: None }
    }

    /// The same bytes as elements of `dtype` in a C-ordered array of shape `dims`, if they fit it.
    pub fn typed(&self, dtype: DType, dims: &[i64]) -> Option<SharedView> {
        let count = redisai_core::tensor::element_count(dims)?;
        if dtype == DType::String || count.checked_mul(dtype.size()) != Some(self.len) {
            return None;
        }
        let (shape, strides) = c_layout(dims, dtype.size());
        Some(SharedView { data: self.data.clone(), off: self.off, len: self.len, layout: Some(Layout { dtype, shape, strides }) })
    }
}

#[pymethods]
impl SharedView {
    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        if flags & ffi::PyBUF_WRITABLE != 0 {
            return Err(PyBufferError::new_err("SharedView is read-only"));
        }
        let me = slf.get();
        let bytes = &me.data.as_slice()[me.off..me.off + me.len];
        let Some(layout) = &me.layout else {
            // SAFETY: the bytes are immutable and live as long as `slf`, which the view references.
            let rc = unsafe {
                ffi::PyBuffer_FillInfo(view, slf.as_ptr(), bytes.as_ptr() as *mut _, bytes.len() as ffi::Py_ssize_t, 1, flags)
            };
            if rc != 0 {
                return Err(PyErr::fetch(slf.py()));
            }
            return Ok(());
        };
        // SAFETY: the shared bytes are immutable; they, the shape and the strides live as long as `slf`.
        unsafe { fill_typed_view(view, slf.as_any(), bytes, layout.dtype, &layout.shape, &layout.strides, flags) };
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}

    fn __len__(&self) -> usize {
        self.len
    }
}
