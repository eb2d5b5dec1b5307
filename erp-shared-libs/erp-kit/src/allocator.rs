//! The memory allocator every service binary installs:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: erp_kit::allocator::ServiceAllocator = erp_kit::allocator::ServiceAllocator;
//! ```
//!
//! A call through a service allocates and frees many short-lived buffers of every size
//! (HTTP/2 frames, header blocks holding a ~2 KB token, protobuf and JSON bodies) on a
//! few Tokio threads. glibc's malloc serves the larger of these from its shared bins
//! (`_int_malloc`, `malloc_consolidate`): about an eighth of the gateway's CPU per call.
//! With mimalloc's thread-local free lists the gateway takes about a sixth less CPU per
//! call and HRM about a tenth (the measurements are in those services' READMEs). It is
//! built without transparent huge pages: with them an idle service held 30–40 MiB, without
//! them within ~2 MiB of glibc.

/// The global allocator of the service binaries (and of benchmarks that host services
/// in-process, so they measure what production runs).
pub use mimalloc::MiMalloc as ServiceAllocator;
