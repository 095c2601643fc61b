//! The backends: device errors, raw block devices and the file-system
//! layer of the file WAL.

mod backend_errors;
mod fs_layer;
mod raw_device;
