//! onnxruntime through its C API, loaded at run time: the ONNX adapter hands us the path of the
//! `libonnxruntime.so` its wheel ships (dlopen, so nothing links against it and `pip install`
//! needs no compiler), and CPU sessions made here run with no Python on the stack and without
//! the GIL. Owns the function table, one process-wide environment, sessions, their runs (inputs
//! wrapped in place, outputs kept in onnxruntime's memory) and MODEL_EXECUTION_TIMEOUT. It does
//! not decide which models use it (the adapter does) nor where they run (the run queues).
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use redisai_core::tensor::buffer::{ForeignBuf, Storage};
use redisai_core::tensor::{DType, Tensor};

use crate::shared_view::SharedView;
use crate::tensor_view::{tensor_from_py, TensorView};

/// The OrtApi version asked for: every entry used here exists from 1.16 on (the table only grows).
const API_VERSION: u32 = 16;

type Status = *mut c_void;
type Ptr = *mut c_void;

/// The entries of `OrtApi` this module calls, read from the table by position (onnxruntime_c_api.h).
struct Api {
    get_error_message: unsafe extern "C" fn(*const c_void) -> *const c_char,
    create_env: unsafe extern "C" fn(c_int, *const c_char, *mut Ptr) -> Status,
    create_session_from_array: unsafe extern "C" fn(Ptr, *const c_void, usize, Ptr, *mut Ptr) -> Status,
    run: unsafe extern "C" fn(Ptr, Ptr, *const *const c_char, *const Ptr, usize, *const *const c_char, usize, *mut Ptr) -> Status,
    create_session_options: unsafe extern "C" fn(*mut Ptr) -> Status,
    set_session_execution_mode: unsafe extern "C" fn(Ptr, c_int) -> Status,
    set_session_log_severity_level: unsafe extern "C" fn(Ptr, c_int) -> Status,
    set_intra_op_num_threads: unsafe extern "C" fn(Ptr, c_int) -> Status,
    set_inter_op_num_threads: unsafe extern "C" fn(Ptr, c_int) -> Status,
    session_get_input_count: unsafe extern "C" fn(Ptr, *mut usize) -> Status,
    session_get_output_count: unsafe extern "C" fn(Ptr, *mut usize) -> Status,
    session_get_input_type_info: unsafe extern "C" fn(Ptr, usize, *mut Ptr) -> Status,
    session_get_output_type_info: unsafe extern "C" fn(Ptr, usize, *mut Ptr) -> Status,
    session_get_input_name: unsafe extern "C" fn(Ptr, usize, Ptr, *mut *mut c_char) -> Status,
    session_get_output_name: unsafe extern "C" fn(Ptr, usize, Ptr, *mut *mut c_char) -> Status,
    create_run_options: unsafe extern "C" fn(*mut Ptr) -> Status,
    run_options_set_terminate: unsafe extern "C" fn(Ptr) -> Status,
    run_options_unset_terminate: unsafe extern "C" fn(Ptr) -> Status,
    create_tensor_with_data_as_ort_value: unsafe extern "C" fn(Ptr, *mut c_void, usize, *const i64, usize, c_int, *mut Ptr) -> Status,
    get_tensor_mutable_data: unsafe extern "C" fn(Ptr, *mut *mut c_void) -> Status,
    cast_type_info_to_tensor_info: unsafe extern "C" fn(Ptr, *mut Ptr) -> Status,
    get_onnx_type_from_type_info: unsafe extern "C" fn(Ptr, *mut c_int) -> Status,
    get_tensor_element_type: unsafe extern "C" fn(Ptr, *mut c_int) -> Status,
    get_dimensions_count: unsafe extern "C" fn(Ptr, *mut usize) -> Status,
    get_dimensions: unsafe extern "C" fn(Ptr, *mut i64, usize) -> Status,
    get_tensor_type_and_shape: unsafe extern "C" fn(Ptr, *mut Ptr) -> Status,
    create_cpu_memory_info: unsafe extern "C" fn(c_int, c_int, *mut Ptr) -> Status,
    allocator_free: unsafe extern "C" fn(Ptr, *mut c_void) -> Status,
    get_allocator_with_default_options: unsafe extern "C" fn(*mut Ptr) -> Status,
    release_status: unsafe extern "C" fn(Status),
    release_session: unsafe extern "C" fn(Ptr),
    release_value: unsafe extern "C" fn(Ptr),
    release_type_info: unsafe extern "C" fn(Ptr),
    release_tensor_type_and_shape_info: unsafe extern "C" fn(Ptr),
    release_session_options: unsafe extern "C" fn(Ptr),
    add_session_config_entry: unsafe extern "C" fn(Ptr, *const c_char, *const c_char) -> Status,
}

/// Entry `i` of the function table as the function pointer type `F`.
///
/// # Safety
/// `table` has more than `i` entries and entry `i` has type `F` (a function pointer).
unsafe fn entry<F>(table: *const *const c_void, i: usize) -> F {
    debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*const c_void>());
    // SAFETY: as the caller promises.
    unsafe { std::mem::transmute_copy::<*const c_void, F>(&*table.add(i)) }
}

#[repr(C)]
struct ApiBase {
    get_api: unsafe extern "C" fn(u32) -> *const *const c_void,
    get_version_string: unsafe extern "C" fn() -> *const c_char,
}

/// The loaded library: its function table, version, environment and CPU memory description.
struct Ort {
    api: Api,
    version: String,
    env: Ptr,
    cpu_info: Ptr,
}

// SAFETY: onnxruntime's environment, memory info and function table are immutable after creation
// and documented as usable from any thread.
unsafe impl Send for Ort {}
unsafe impl Sync for Ort {}

static ORT: OnceLock<Result<Ort, String>> = OnceLock::new();

impl Ort {
    /// # Safety
    /// `lib` must be an onnxruntime shared library (its `OrtGetApiBase` is trusted).
    unsafe fn open(lib: &str) -> Result<Ort, String> {
        let path = CString::new(lib).map_err(|_| "bad library path".to_string())?;
        // SAFETY: loading a library; RTLD_LOCAL keeps its symbols out of the global namespace.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            // SAFETY: dlerror returns a message string owned by libc (or null).
            let why = unsafe { libc::dlerror() };
            let why = if why.is_null() { "unknown error".into() } else { unsafe { CStr::from_ptr(why) }.to_string_lossy().into_owned() };
            return Err(format!("cannot load {lib}: {why}"));
        }
        // SAFETY: looking up the one exported entry point of the C API.
        let sym = unsafe { libc::dlsym(handle, c"OrtGetApiBase".as_ptr()) };
        if sym.is_null() {
            return Err(format!("{lib} has no OrtGetApiBase"));
        }
        // SAFETY: OrtGetApiBase has this signature in every onnxruntime release.
        let get_base: unsafe extern "C" fn() -> *const ApiBase = unsafe { std::mem::transmute(sym) };
        let base = unsafe { &*get_base() };
        let version = unsafe { CStr::from_ptr((base.get_version_string)()) }.to_string_lossy().into_owned();
        let table = unsafe { (base.get_api)(API_VERSION) };
        if table.is_null() {
            return Err(format!("onnxruntime {version} does not offer C API version {API_VERSION}"));
        }
        // SAFETY: positions and signatures are those of onnxruntime_c_api.h, which only appends.
        let api = unsafe {
            Api {
                get_error_message: entry(table, 2),
                create_env: entry(table, 3),
                create_session_from_array: entry(table, 8),
                run: entry(table, 9),
                create_session_options: entry(table, 10),
                set_session_execution_mode: entry(table, 13),
                set_session_log_severity_level: entry(table, 22),
                set_intra_op_num_threads: entry(table, 24),
                set_inter_op_num_threads: entry(table, 25),
                session_get_input_count: entry(table, 30),
                session_get_output_count: entry(table, 31),
                session_get_input_type_info: entry(table, 33),
                session_get_output_type_info: entry(table, 34),
                session_get_input_name: entry(table, 36),
                session_get_output_name: entry(table, 37),
                create_run_options: entry(table, 39),
                run_options_set_terminate: entry(table, 46),
                run_options_unset_terminate: entry(table, 47),
                create_tensor_with_data_as_ort_value: entry(table, 49),
                get_tensor_mutable_data: entry(table, 51),
                cast_type_info_to_tensor_info: entry(table, 55),
                get_onnx_type_from_type_info: entry(table, 56),
                get_tensor_element_type: entry(table, 60),
                get_dimensions_count: entry(table, 61),
                get_dimensions: entry(table, 62),
                get_tensor_type_and_shape: entry(table, 65),
                create_cpu_memory_info: entry(table, 69),
                allocator_free: entry(table, 76),
                get_allocator_with_default_options: entry(table, 78),
                release_status: entry(table, 93),
                release_session: entry(table, 95),
                release_value: entry(table, 96),
                release_type_info: entry(table, 98),
                release_tensor_type_and_shape_info: entry(table, 99),
                release_session_options: entry(table, 100),
                add_session_config_entry: entry(table, 130),
            }
        };
        let mut ort = Ort { api, version, env: std::ptr::null_mut(), cpu_info: std::ptr::null_mut() };
        let mut env = std::ptr::null_mut();
        // ORT_LOGGING_LEVEL_ERROR: what the Python binding's default severity shows
        ort.check(unsafe { (ort.api.create_env)(3, c"redisai-fast".as_ptr(), &mut env) })?;
        ort.env = env;
        let mut info = std::ptr::null_mut();
        // OrtArenaAllocator, OrtMemTypeDefault: what the CPU provider uses for its own tensors
        ort.check(unsafe { (ort.api.create_cpu_memory_info)(1, 0, &mut info) })?;
        ort.cpu_info = info;
        Ok(ort)
    }

    /// A status as a Result; the message is onnxruntime's own text.
    fn check(&self, status: Status) -> Result<(), String> {
        if status.is_null() {
            return Ok(());
        }
        // SAFETY: a non-null status from this library; released once, after its message is copied.
        let msg = unsafe { CStr::from_ptr((self.api.get_error_message)(status)) }.to_string_lossy().into_owned();
        unsafe { (self.api.release_status)(status) };
        Err(msg)
    }
}

/// The library at `lib`, loaded on first use (later calls get the same one, whatever they name).
fn ort(lib: &str) -> Result<&'static Ort, String> {
    // SAFETY: the adapter passes the library its onnxruntime wheel ships.
    ORT.get_or_init(|| unsafe { Ort::open(lib) }).as_ref().map_err(Clone::clone)
}

/// Stored dtypes and onnxruntime's numbers for them (ONNXTensorElementDataType).
const ELEMENT_TYPES: [(DType, c_int); 9] = [
    (DType::Float, 1),
    (DType::Uint8, 2),
    (DType::Int8, 3),
    (DType::Uint16, 4),
    (DType::Int16, 5),
    (DType::Int32, 6),
    (DType::Int64, 7),
    (DType::Bool, 9),
    (DType::Double, 11),
];

fn element_type(d: DType) -> Option<c_int> {
    ELEMENT_TYPES.iter().find(|(t, _)| *t == d).map(|&(_, e)| e)
}

fn dtype_of(e: c_int) -> Option<DType> {
    ELEMENT_TYPES.iter().find(|(_, n)| *n == e).map(|&(t, _)| t)
}

/// onnxruntime's name of an element type, as its messages write it.
fn type_name(t: c_int) -> &'static str {
    const NAMES: [&str; 17] = [
        "undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64", "string", "bool", "float16", "double",
        "uint32", "uint64", "complex64", "complex128", "bfloat16",
    ];
    usize::try_from(t).ok().and_then(|i| NAMES.get(i)).copied().unwrap_or("undefined")
}

/// Session settings (the adapter's: thread counts, execution timeout).
pub struct SessionConfig {
    pub intra_threads: i32,
    pub inter_threads: i32,
    pub timeout_ms: u64,
}

/// A loaded model.
pub struct Session {
    ort: &'static Ort,
    session: Ptr,
    input_names: Vec<CString>,
    output_names: Vec<CString>,
    /// The names as `run` passes them (into the CStrings above, whose heap bytes never move).
    input_ptrs: Vec<*const c_char>,
    output_ptrs: Vec<*const c_char>,
    /// The element type of each input (onnxruntime's numbering).
    input_types: Vec<c_int>,
    /// Every input and output is a tensor of a type stored tensors have (STRING excluded).
    plain: bool,
    timeout: Option<Duration>,
}

// SAFETY: onnxruntime sessions may be run from several threads at once; nothing here mutates.
unsafe impl Send for Session {}
unsafe impl Sync for Session {}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: our session, released once.
        unsafe { (self.ort.api.release_session)(self.session) };
    }
}

/// An onnxruntime output value: releasing it frees the memory a tensor made from it points into.
struct OwnedValue(&'static Ort, Ptr);

// SAFETY: releasing a value is thread-safe; the value is not used otherwise.
unsafe impl Send for OwnedValue {}
unsafe impl Sync for OwnedValue {}

impl Drop for OwnedValue {
    fn drop(&mut self) {
        // SAFETY: a value onnxruntime gave us, released once.
        unsafe { (self.0.api.release_value)(self.1) };
    }
}

impl Session {
    /// Loads `model` with `lib`'s onnxruntime. The error is onnxruntime's message.
    pub fn load(lib: &str, model: &[u8], cfg: &SessionConfig) -> Result<Session, String> {
        let ort = ort(lib)?;
        let api = &ort.api;
        let mut so = std::ptr::null_mut();
        ort.check(unsafe { (api.create_session_options)(&mut so) })?;
        let made: Result<Ptr, String> = (|| {
            // SAFETY: `so` is live until released below; every string is NUL-terminated.
            unsafe {
                ort.check((api.set_session_log_severity_level)(so, 3))?;
                ort.check((api.set_intra_op_num_threads)(so, cfg.intra_threads.max(1)))?;
                if cfg.intra_threads <= 1 {
                    // no pool threads to spin: they would compete with the event loop for the cores
                    ort.check((api.add_session_config_entry)(so, c"session.intra_op.allow_spinning".as_ptr(), c"0".as_ptr()))?;
                }
                if cfg.inter_threads > 0 {
                    ort.check((api.set_inter_op_num_threads)(so, cfg.inter_threads))?;
                    ort.check((api.set_session_execution_mode)(so, 1))?;
                }
                let mut session = std::ptr::null_mut();
                ort.check((api.create_session_from_array)(ort.env, model.as_ptr() as *const c_void, model.len(), so, &mut session))?;
                Ok(session)
            }
        })();
        // SAFETY: created above, released once.
        unsafe { (api.release_session_options)(so) };
        let session = made?;
        let mut s = Session { ort, session, input_names: vec![], output_names: vec![], input_ptrs: vec![], output_ptrs: vec![], input_types: vec![], plain: true, timeout: None };
        if cfg.timeout_ms > 0 {
            s.timeout = Some(Duration::from_millis(cfg.timeout_ms));
        }
        s.describe()?;
        Ok(s)
    }

    /// Reads the input/output names and whether every one is a plain tensor.
    fn describe(&mut self) -> Result<(), String> {
        let (ort, api) = (self.ort, &self.ort.api);
        let mut alloc = std::ptr::null_mut();
        ort.check(unsafe { (api.get_allocator_with_default_options)(&mut alloc) })?;
        for output in [false, true] {
            let mut n = 0usize;
            ort.check(unsafe { if output { (api.session_get_output_count)(self.session, &mut n) } else { (api.session_get_input_count)(self.session, &mut n) } })?;
            for i in 0..n {
                let mut name: *mut c_char = std::ptr::null_mut();
                // SAFETY: the name is allocated by onnxruntime's default allocator; copied, then freed with it.
                let owned = unsafe {
                    ort.check(if output { (api.session_get_output_name)(self.session, i, alloc, &mut name) } else { (api.session_get_input_name)(self.session, i, alloc, &mut name) })?;
                    let c = CStr::from_ptr(name).to_owned();
                    ort.check((api.allocator_free)(alloc, name as *mut c_void))?;
                    c
                };
                if output { self.output_names.push(owned) } else { self.input_names.push(owned) }
                let mut info = std::ptr::null_mut();
                // SAFETY: type info owned by us, released after reading; the tensor info view lives inside it.
                unsafe {
                    ort.check(if output { (api.session_get_output_type_info)(self.session, i, &mut info) } else { (api.session_get_input_type_info)(self.session, i, &mut info) })?;
                    let mut kind: c_int = 0;
                    let mut elem: c_int = 0;
                    let mut tinfo = std::ptr::null_mut();
                    let ok = ort.check((api.get_onnx_type_from_type_info)(info, &mut kind)).is_ok()
                        && kind == 1
                        && ort.check((api.cast_type_info_to_tensor_info)(info, &mut tinfo)).is_ok()
                        && !tinfo.is_null()
                        && ort.check((api.get_tensor_element_type)(tinfo, &mut elem)).is_ok()
                        && dtype_of(elem).is_some();
                    (api.release_type_info)(info);
                    if !output {
                        self.input_types.push(elem);
                    }
                    self.plain &= ok;
                }
            }
        }
        self.input_ptrs = self.input_names.iter().map(|c| c.as_ptr()).collect();
        self.output_ptrs = self.output_names.iter().map(|c| c.as_ptr()).collect();
        Ok(())
    }

    pub fn input_names(&self) -> Vec<String> {
        self.input_names.iter().map(|c| c.to_string_lossy().into_owned()).collect()
    }

    pub fn output_names(&self) -> Vec<String> {
        self.output_names.iter().map(|c| c.to_string_lossy().into_owned()).collect()
    }

    /// Whether runs can go through here (else the adapter keeps onnxruntime's Python session).
    pub fn plain(&self) -> bool {
        self.plain
    }

    /// Runs the model on the calling thread. Inputs are given to onnxruntime in place; outputs
    /// stay in its memory (each tensor keeps its value alive). Errors are onnxruntime's text.
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
        let (ort, api) = (self.ort, &self.ort.api);
        if inputs.len() != self.input_names.len() {
            return Err(format!("ERR Expected {} inputs but got {}", self.input_names.len(), inputs.len()));
        }
        let mut values: Vec<OwnedValue> = Vec::with_capacity(inputs.len());
        for (t, &expected) in inputs.iter().zip(&self.input_types) {
            let Some(ty) = element_type(t.dtype()) else {
                // what onnxruntime itself answers (through its Python binding) for a STRING tensor
                return Err(format!("Unexpected input data type. Actual: (tensor(string)) , expected: (tensor({}))", type_name(expected)));
            };
            let bytes = t.bytes();
            let mut v = std::ptr::null_mut();
            // SAFETY: the tensor's bytes outlive the run (we hold `inputs`); onnxruntime only reads
            // inputs (the pointer is not const in the C API for outputs' sake).
            ort.check(unsafe {
                (api.create_tensor_with_data_as_ort_value)(ort.cpu_info, bytes.as_ptr() as *mut c_void, bytes.len(), t.shape().as_ptr(), t.shape().len(), ty, &mut v)
            })?;
            values.push(OwnedValue(ort, v));
        }
        let (in_names, out_names) = (&self.input_ptrs, &self.output_ptrs);
        let in_values: Vec<Ptr> = values.iter().map(|v| v.1).collect();
        let mut outs: Vec<Ptr> = vec![std::ptr::null_mut(); out_names.len()];
        let watch = self.timeout.map(|t| Watch::start(ort, t)).transpose()?;
        // SAFETY: names and values are live for the call; `outs` has room for every output.
        let status = unsafe {
            (api.run)(self.session, watch.as_ref().map_or(std::ptr::null_mut(), |w| w.opts), in_names.as_ptr(), in_values.as_ptr(), in_values.len(), out_names.as_ptr(), out_names.len(), outs.as_mut_ptr())
        };
        drop(watch);
        drop(values);
        let owned: Vec<Option<OwnedValue>> = outs.into_iter().map(|p| (!p.is_null()).then(|| OwnedValue(ort, p))).collect();
        ort.check(status)?;
        owned.into_iter().map(|v| v.ok_or_else(|| "ERR onnxruntime returned no output".to_string()).and_then(|v| self.tensor_of(v))).collect()
    }

    /// An output value as a tensor sharing its memory.
    fn tensor_of(&self, v: OwnedValue) -> Result<Tensor, String> {
        let (ort, api) = (self.ort, &self.ort.api);
        let mut info = std::ptr::null_mut();
        ort.check(unsafe { (api.get_tensor_type_and_shape)(v.1, &mut info) })?;
        // SAFETY: `info` is ours until released below.
        let described = unsafe {
            let mut elem = 0;
            let mut ndim = 0usize;
            let r = ort.check((api.get_tensor_element_type)(info, &mut elem)).and_then(|_| ort.check((api.get_dimensions_count)(info, &mut ndim)));
            let mut dims = vec![0i64; ndim];
            let r = r.and_then(|_| ort.check((api.get_dimensions)(info, dims.as_mut_ptr(), ndim)));
            (api.release_tensor_type_and_shape_info)(info);
            r.map(|_| (elem, dims))
        };
        let (elem, dims) = described?;
        let dtype = dtype_of(elem).ok_or_else(|| format!("ERR unsupported output element type {elem}"))?;
        let count = dims.iter().try_fold(1usize, |acc, &d| usize::try_from(d).ok().and_then(|d| acc.checked_mul(d)));
        let len = count.and_then(|c| c.checked_mul(dtype.size())).ok_or("ERR bad output shape")?;
        let mut data = std::ptr::null_mut();
        ort.check(unsafe { (api.get_tensor_mutable_data)(v.1, &mut data) })?;
        let ptr = if data.is_null() { std::ptr::NonNull::<u64>::dangling().as_ptr() as *const u8 } else { data as *const u8 };
        // SAFETY: the value owns `len` bytes at `data` and keeps them unchanged until released,
        // which happens when the tensor's storage drops `v`.
        let buf = unsafe { ForeignBuf::new(ptr, len, Box::new(v)) };
        Tensor::from_shared(dtype, dims, Arc::new(Storage::Foreign(buf))).map_err(|e| e.0)
    }
}

// ---------------------------------------------------------------- MODEL_EXECUTION_TIMEOUT

/// Runs in progress with a time limit: run options by id, with when they must stop. A thread
/// checks them every 100 ms and sets onnxruntime's terminate flag on the late ones.
struct Watchdog {
    running: Mutex<HashMap<u64, (Instant, usize)>>,
}

static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();
static NEXT_RUN: AtomicU64 = AtomicU64::new(1);
const WATCH_PERIOD: Duration = Duration::from_millis(100);

fn watchdog(ort: &'static Ort) -> &'static Watchdog {
    WATCHDOG.get_or_init(|| {
        std::thread::Builder::new()
            .name("onnx-watchdog".into())
            .spawn(move || loop {
                std::thread::sleep(WATCH_PERIOD);
                let now = Instant::now();
                if let Some(dog) = WATCHDOG.get() {
                    for (deadline, opts) in dog.running.lock().values() {
                        if now >= *deadline {
                            // SAFETY: the options stay alive while registered (Watch unregisters
                            // before releasing them, under this lock).
                            let _ = ort.check(unsafe { (ort.api.run_options_set_terminate)(*opts as Ptr) });
                        }
                    }
                }
            })
            .ok();
        Watchdog { running: Mutex::new(HashMap::new()) }
    })
}

thread_local! {
    /// One run options object per thread, reused for every timed run.
    static RUN_OPTIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One timed run, registered with the watchdog while it lasts.
struct Watch {
    ort: &'static Ort,
    id: u64,
    opts: Ptr,
}

impl Watch {
    fn start(ort: &'static Ort, limit: Duration) -> Result<Watch, String> {
        let mut opts = RUN_OPTIONS.with(|c| c.get()) as Ptr;
        if opts.is_null() {
            ort.check(unsafe { (ort.api.create_run_options)(&mut opts) })?;
            RUN_OPTIONS.with(|c| c.set(opts as usize));
        } else {
            ort.check(unsafe { (ort.api.run_options_unset_terminate)(opts) })?;
        }
        let id = NEXT_RUN.fetch_add(1, Relaxed);
        watchdog(ort).running.lock().insert(id, (Instant::now() + limit, opts as usize));
        Ok(Watch { ort, id, opts })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        watchdog(self.ort).running.lock().remove(&self.id);
    }
}

// ---------------------------------------------------------------- the adapter's handle

/// `_core.OrtSession(library, model, intra_threads, inter_threads, timeout_ms)`: a CPU model loaded
/// through the C API of `library`. The ONNX adapter makes it and returns it as the model's
/// `native`; the server then runs the model here. ValueError carries onnxruntime's message.
#[pyclass(frozen, name = "OrtSession", module = "redisai_fast._core")]
pub struct PyOrtSession {
    pub session: Arc<Session>,
}

#[pymethods]
impl PyOrtSession {
    #[new]
    #[pyo3(signature = (library, model, intra_threads = 1, inter_threads = 0, timeout_ms = 0))]
    fn new(py: Python<'_>, library: &str, model: Bound<'_, PyAny>, intra_threads: i32, inter_threads: i32, timeout_ms: u64) -> PyResult<Self> {
        let cfg = SessionConfig { intra_threads, inter_threads, timeout_ms };
        let loaded = if let Ok(view) = model.cast::<SharedView>() {
            let bytes = view.get().as_slice();
            py.detach(|| Session::load(library, bytes, &cfg))
        } else {
            let bytes: Vec<u8> = model.extract()?;
            py.detach(|| Session::load(library, &bytes, &cfg))
        };
        loaded.map(|s| PyOrtSession { session: Arc::new(s) }).map_err(PyValueError::new_err)
    }

    /// Loads the library (once per process) and returns its version; ValueError if it cannot.
    #[staticmethod]
    fn library_version(library: &str) -> PyResult<String> {
        ort(library).map(|o| o.version.clone()).map_err(PyValueError::new_err)
    }

    #[getter]
    fn input_names(&self) -> Vec<String> {
        self.session.input_names()
    }

    #[getter]
    fn output_names(&self) -> Vec<String> {
        self.session.output_names()
    }

    /// Every input and output is a tensor of a stored type (no STRING): the server can run it.
    #[getter]
    fn plain(&self) -> bool {
        self.session.plain()
    }

    /// Runs the model (for callers of the adapter interface; the server runs it from Rust).
    fn run(&self, py: Python<'_>, inputs: Vec<Bound<'_, PyAny>>) -> PyResult<Vec<TensorView>> {
        let tensors = inputs.iter().map(tensor_from_py).collect::<PyResult<Vec<_>>>()?;
        let session = self.session.clone();
        let out = py.detach(move || session.run(&tensors)).map_err(PyRuntimeError::new_err)?;
        Ok(out.into_iter().map(TensorView::new).collect())
    }
}
