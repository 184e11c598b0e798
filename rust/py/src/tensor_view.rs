//! `TensorView`: a stored tensor as the frameworks see it, without a copy: the buffer protocol
//! (typed, shaped: `numpy.asarray(view)`) and DLPack (`torch.from_dlpack(view)`). Also turns a
//! framework's output (anything with the buffer protocol) into a tensor that keeps it alive.
use std::ffi::{c_void, CStr};
use std::os::raw::c_int;

use pyo3::exceptions::{PyBufferError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use redisai_core::tensor::buffer::{ForeignBuf, Storage};
use redisai_core::tensor::{DType, Tensor};

use crate::deferred::PyRef;

#[pyclass(frozen, module = "redisai_fast._core")]
pub struct TensorView {
    tensor: Tensor,
    shape: Vec<ffi::Py_ssize_t>,
    strides: Vec<ffi::Py_ssize_t>,
}

impl TensorView {
    pub fn new(tensor: Tensor) -> Self {
        let shape: Vec<ffi::Py_ssize_t> = tensor.shape().iter().map(|&d| d as ffi::Py_ssize_t).collect();
        let item = tensor.dtype().size().max(1) as ffi::Py_ssize_t;
        let mut strides = vec![0; shape.len()];
        let mut acc = item;
        for i in (0..shape.len()).rev() {
            strides[i] = acc;
            acc *= shape[i].max(1);
        }
        TensorView { tensor, shape, strides }
    }
}

// ---------------------------------------------------------------- DLPack (v0.8 ABI)

#[repr(C)]
struct DLDevice {
    device_type: i32,
    device_id: i32,
}

#[repr(C)]
struct DLDataType {
    code: u8,
    bits: u8,
    lanes: u16,
}

#[repr(C)]
struct DLTensor {
    data: *mut c_void,
    device: DLDevice,
    ndim: i32,
    dtype: DLDataType,
    shape: *mut i64,
    strides: *mut i64,
    byte_offset: u64,
}

#[repr(C)]
struct DLManagedTensor {
    dl_tensor: DLTensor,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

/// The managed tensor and what keeps its memory alive; `managed` must stay the first field.
#[repr(C)]
struct DlHolder {
    managed: DLManagedTensor,
    shape: Vec<i64>,
    _tensor: Tensor,
}

unsafe extern "C" fn dl_deleter(m: *mut DLManagedTensor) {
    if !m.is_null() {
        // SAFETY: m was produced by Box::into_raw of a DlHolder whose first field is `managed`.
        drop(unsafe { Box::from_raw(m as *mut DlHolder) });
    }
}

const DLTENSOR: &CStr = c"dltensor";

unsafe extern "C" fn capsule_destructor(capsule: *mut ffi::PyObject) {
    // a capsule still named "dltensor" was never consumed: we still own the tensor
    // SAFETY: called by CPython with a valid capsule.
    unsafe {
        if ffi::PyCapsule_IsValid(capsule, DLTENSOR.as_ptr()) == 1 {
            let p = ffi::PyCapsule_GetPointer(capsule, DLTENSOR.as_ptr()) as *mut DLManagedTensor;
            dl_deleter(p);
        } else {
            ffi::PyErr_Clear();
        }
    }
}

fn dl_dtype(d: DType) -> Option<DLDataType> {
    let (code, bits) = match d {
        DType::Float => (2, 32),
        DType::Double => (2, 64),
        DType::Int8 => (0, 8),
        DType::Int16 => (0, 16),
        DType::Int32 => (0, 32),
        DType::Int64 => (0, 64),
        DType::Uint8 => (1, 8),
        DType::Uint16 => (1, 16),
        DType::Bool => (6, 8),
        DType::String => return None,
    };
    Some(DLDataType { code, bits, lanes: 1 })
}

#[pymethods]
impl TensorView {
    #[getter]
    fn dtype(&self) -> &'static str {
        self.tensor.dtype().name()
    }

    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.tensor.shape())
    }

    /// STRING tensors: the elements as bytes.
    fn strings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        if self.tensor.dtype() != DType::String {
            return Err(PyTypeError::new_err("not a STRING tensor"));
        }
        let items: Vec<Bound<'py, PyBytes>> = (0..self.tensor.count()).map(|i| PyBytes::new(py, self.tensor.string_at(i))).collect();
        PyList::new(py, items)
    }

    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        if flags & ffi::PyBUF_WRITABLE != 0 {
            return Err(PyBufferError::new_err("stored tensors are read-only"));
        }
        let me = slf.get();
        if me.tensor.dtype() == DType::String {
            return Err(PyBufferError::new_err("STRING tensors have no buffer; use strings()"));
        }
        let bytes = me.tensor.bytes();
        // SAFETY: view is a valid Py_buffer to fill; every pointer we store lives as long as `slf`,
        // which the view keeps a reference to.
        unsafe {
            (*view).obj = slf.clone().into_any().into_ptr();
            (*view).buf = bytes.as_ptr() as *mut c_void;
            (*view).len = bytes.len() as ffi::Py_ssize_t;
            (*view).readonly = 1;
            (*view).itemsize = me.tensor.dtype().size() as ffi::Py_ssize_t;
            (*view).format = if flags & ffi::PyBUF_FORMAT != 0 {
                let f: &'static CStr = match me.tensor.dtype() {
                    DType::Float => c"f",
                    DType::Double => c"d",
                    DType::Int8 => c"b",
                    DType::Int16 => c"h",
                    DType::Int32 => c"i",
                    DType::Int64 => c"q",
                    DType::Uint8 => c"B",
                    DType::Uint16 => c"H",
                    DType::Bool => c"?",
                    DType::String => c"B",
                };
                f.as_ptr() as *mut _
            } else {
                std::ptr::null_mut()
            };
            (*view).ndim = me.shape.len() as c_int;
            (*view).shape = if flags & ffi::PyBUF_ND != 0 { me.shape.as_ptr() as *mut _ } else { std::ptr::null_mut() };
            (*view).strides =
                if flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES { me.strides.as_ptr() as *mut _ } else { std::ptr::null_mut() };
            (*view).suboffsets = std::ptr::null_mut();
            (*view).internal = std::ptr::null_mut();
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}

    #[pyo3(signature = (*_args, **_kwargs))]
    fn __dlpack__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, pyo3::types::PyDict>>) -> PyResult<Py<PyAny>> {
        dlpack_capsule(py, &self.tensor)
    }

    fn __dlpack_device__(&self) -> (i32, i32) {
        (1, 0)
    }

    fn __len__(&self) -> usize {
        self.tensor.shape().first().map_or(1, |&d| d as usize)
    }

    fn __repr__(&self) -> String {
        format!("TensorView({}, {:?})", self.tensor.dtype().name(), self.tensor.shape())
    }
}

/// A DLPack capsule ("dltensor") of a stored tensor, sharing its memory (what `torch.from_dlpack`
/// takes); STRING tensors have none.
pub fn dlpack_capsule(py: Python<'_>, tensor: &Tensor) -> PyResult<Py<PyAny>> {
    let dtype = dl_dtype(tensor.dtype()).ok_or_else(|| PyBufferError::new_err("STRING tensors cannot be exported with DLPack"))?;
    let shape: Vec<i64> = tensor.shape().to_vec();
    let tensor = tensor.clone();
    let data = tensor.bytes().as_ptr() as *mut c_void;
    let mut holder = Box::new(DlHolder {
        managed: DLManagedTensor {
            dl_tensor: DLTensor {
                data,
                device: DLDevice { device_type: 1, device_id: 0 },
                ndim: shape.len() as i32,
                dtype,
                shape: std::ptr::null_mut(),
                strides: std::ptr::null_mut(),
                byte_offset: 0,
            },
            manager_ctx: std::ptr::null_mut(),
            deleter: Some(dl_deleter),
        },
        shape,
        _tensor: tensor,
    });
    holder.managed.dl_tensor.shape = holder.shape.as_mut_ptr();
    let raw = Box::into_raw(holder);
    // SAFETY: raw points to a live DlHolder; the capsule owns it until a consumer renames it.
    unsafe {
        (*raw).managed.manager_ctx = raw as *mut c_void;
        let cap = ffi::PyCapsule_New(raw as *mut c_void, DLTENSOR.as_ptr(), Some(capsule_destructor));
        if cap.is_null() {
            dl_deleter(raw as *mut DLManagedTensor);
            return Err(PyErr::fetch(py));
        }
        Ok(Bound::from_owned_ptr(py, cap).unbind())
    }
}

/// The dtype of a buffer-protocol format in native (or little-endian) byte order.
pub fn dtype_from_format(format: &str, itemsize: usize) -> Option<DType> {
    // '!' and '>' are big-endian: not ours
    let f = format.trim_start_matches(['@', '=', '<']);
    Some(match (f, itemsize) {
        ("f", 4) => DType::Float,
        ("d", 8) => DType::Double,
        ("b", 1) => DType::Int8,
        ("h", 2) => DType::Int16,
        ("i", 4) | ("l", 4) => DType::Int32,
        ("q", 8) | ("l", 8) => DType::Int64,
        ("B", 1) => DType::Uint8,
        ("H", 2) => DType::Uint16,
        ("?", 1) => DType::Bool,
        _ => return None,
    })
}

/// A framework output (numpy array or anything with a C-contiguous typed buffer) as a tensor,
/// sharing its memory. A `TensorView` comes back as its own tensor.
pub fn tensor_from_py(obj: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    if let Ok(v) = obj.cast::<TensorView>() {
        return Ok(v.get().tensor.clone());
    }
    let py = obj.py();
    let mut view: ffi::Py_buffer = unsafe { std::mem::zeroed() };
    let flags = ffi::PyBUF_FORMAT | ffi::PyBUF_C_CONTIGUOUS;
    // SAFETY: view is zeroed storage for CPython to fill; released below in every path.
    if unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), &mut view, flags) } != 0 {
        // the exporter's own exception is replaced by ours (left set, it would surface later)
        drop(PyErr::take(py));
        return Err(PyTypeError::new_err(format!(
            "model output of type {} is not a C-contiguous array",
            obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        )));
    }
    let result = (|| {
        let format = if view.format.is_null() { "B".to_string() } else { unsafe { CStr::from_ptr(view.format) }.to_string_lossy().into_owned() };
        let itemsize = view.itemsize as usize;
        let dtype = dtype_from_format(&format, itemsize)
            .ok_or_else(|| PyValueError::new_err(format!("unsupported output element type '{format}' ({itemsize} bytes)")))?;
        let shape: Vec<i64> = if view.ndim == 0 {
            vec![] // a scalar
        } else if view.shape.is_null() {
            vec![view.len as i64 / itemsize.max(1) as i64]
        } else {
            (0..view.ndim as usize).map(|i| unsafe { *view.shape.add(i) } as i64).collect()
        };
        let len = view.len as usize;
        // SAFETY: the exporter keeps `buf` valid and unchanged while `obj` lives (we own the
        // only reference to this output), and PyOwner keeps `obj` alive.
        // (a PyRef: the tensor may be dropped inside torch's deallocator, where touching Python is unsafe)
        let foreign = unsafe { ForeignBuf::new(view.buf as *const u8, len, Box::new(PyRef::new(obj.clone()))) };
        Tensor::from_shared(dtype, shape, std::sync::Arc::new(Storage::Foreign(foreign))).map_err(|e| PyValueError::new_err(e.0))
    })();
    // SAFETY: view was filled by a successful PyObject_GetBuffer.
    unsafe { ffi::PyBuffer_Release(&mut view) };
    let _ = py;
    result
}
