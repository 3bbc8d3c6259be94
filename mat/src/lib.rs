//! MAT-file Level 5: a focused reader and writer for the subset of the format that the
//! CRCNS pvc-1 recordings use.
//!
//! Why our own code: the Rust crates available when this was written could not read the
//! real pvc-1 files. `matfile` reads numeric arrays only (structs and cells are dropped),
//! and `matrw` rejects headers whose free-text field does not start with the exact
//! MATLAB wording (scipy writes a different one) and panics on the old-style MATLAB
//! objects (`pepmodule`, `peplooper`) and zero-byte `miMATRIX` elements that the pvc-1
//! files contain. The format itself is small (MathWorks, "MAT-File Format", Level 5), so a
//! few hundred lines give a reader we can harden and fuzz. It sits behind the
//! [`MatReader`] trait so that another implementation can replace it.
//!
//! What is covered:
//! - header: 116 bytes of free text (not checked), subsystem offset, version `0x0100`,
//!   endian indicator `IM` (little-endian) or `MI` (big-endian);
//! - MATLAB v7.3 files (HDF5) are detected and rejected with advice on converting them;
//! - normal 8-byte tags and 4-byte "small data element" tags, 8-byte padding;
//! - `miCOMPRESSED` top-level elements (zlib), with a cap on the inflated size;
//! - numeric arrays of every MATLAB class, whatever smaller storage type the data uses;
//!   logical, char (`miUTF8`, `miUTF16`, `miUINT16`, `miUINT8`, `miUTF32`), cell arrays,
//!   structs and old-style objects (class name + fields, read like structs);
//! - sparse, complex, function-handle and opaque (classdef) arrays are kept as
//!   [`MatData::Unsupported`] placeholders: a file that contains one still reads, and
//!   only code that touches that value gets an error.
//!
//! Layout:
//! - [`error`]: [`MatError`], every failure with the file, the byte offset and advice;
//! - [`value`]: the value model ([`MatFile`], [`MatArray`], [`MatData`]) and the checked
//!   accessor [`MatRef`] that names the path inside the file in its errors;
//! - [`reader`]: bytes -> [`MatFile`];
//! - [`writer`]: [`Variable`]s -> bytes/file, written atomically, whole-number doubles
//!   stored in the smallest integer type as MATLAB's `save` does;
//! - [`atomic`]: write-to-temp-then-rename, shared with the pvc-1 writer and the simulator.
//!
//! Element order is MATLAB's: column-major.

pub mod atomic;
pub mod error;
pub mod reader;
pub mod value;
pub mod writer;

use std::path::Path;

pub use error::{MatError, Pos};
pub use reader::{read_mat_bytes, read_mat_bytes_with, read_mat_file, ReadOptions};
pub use value::{MatArray, MatClass, MatData, MatFile, MatRef, NumericData, StructArray, Variable};
pub use writer::{write_mat_bytes, write_mat_bytes_with_header, write_mat_file, Compression};

/// Reads a MAT file into our value model. A trait so that the pvc-1 code does not depend
/// on which parser is behind it.
pub trait MatReader {
    fn read(&self, path: &Path) -> Result<MatFile, MatError>;
}

/// The hand-written Level-5 reader of this module.
#[derive(Debug, Clone, Default)]
pub struct Level5Reader {
    pub options: ReadOptions,
}

impl MatReader for Level5Reader {
    fn read(&self, path: &Path) -> Result<MatFile, MatError> {
        reader::read_mat_file_with(path, &self.options)
    }
}

/// MAT data-element types (the `mi*` constants of the format).
pub mod mi {
    pub const INT8: u32 = 1;
    pub const UINT8: u32 = 2;
    pub const INT16: u32 = 3;
    pub const UINT16: u32 = 4;
    pub const INT32: u32 = 5;
    pub const UINT32: u32 = 6;
    pub const SINGLE: u32 = 7;
    pub const DOUBLE: u32 = 9;
    pub const INT64: u32 = 12;
    pub const UINT64: u32 = 13;
    pub const MATRIX: u32 = 14;
    pub const COMPRESSED: u32 = 15;
    pub const UTF8: u32 = 16;
    pub const UTF16: u32 = 17;
    pub const UTF32: u32 = 18;
}

/// MATLAB array classes as numbered in MAT files (the `mx*_CLASS` table of the MAT-file
/// format). Note that MAT files number objects 3, unlike `matrix.h` (where 3 is logical
/// and objects are 18); 16 is a function handle and 17 an opaque (classdef) value.
pub mod mx {
    pub const CELL: u8 = 1;
    pub const STRUCT: u8 = 2;
    pub const OBJECT: u8 = 3;
    pub const CHAR: u8 = 4;
    pub const SPARSE: u8 = 5;
    pub const DOUBLE: u8 = 6;
    pub const SINGLE: u8 = 7;
    pub const INT8: u8 = 8;
    pub const UINT8: u8 = 9;
    pub const INT16: u8 = 10;
    pub const UINT16: u8 = 11;
    pub const INT32: u8 = 12;
    pub const UINT32: u8 = 13;
    pub const INT64: u8 = 14;
    pub const UINT64: u8 = 15;
    pub const FUNCTION: u8 = 16;
    pub const OPAQUE: u8 = 17;

    /// Array-flags bits (first word of the array-flags subelement).
    pub const FLAG_COMPLEX: u32 = 0x0800;
    pub const FLAG_GLOBAL: u32 = 0x0400;
    pub const FLAG_LOGICAL: u32 = 0x0200;
}
