//! Parsing Level-5 MAT bytes into the value model.
//!
//! The parser works on an in-memory byte slice and never trusts a length from the file:
//! every size is checked against the bytes that remain before anything is allocated, the
//! inflated size of compressed elements is capped, and nesting depth is limited. Any
//! malformed input ends in a [`MatError`] that names the file and the byte position.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::{MatError, Pos};
use super::value::{MatArray, MatData, MatFile, NumericData, StructArray, Variable};
use super::{mi, mx};

/// Limits that keep a hostile or corrupt file from exhausting memory or stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Largest inflated size of one `miCOMPRESSED` element (bytes).
    pub max_inflated_bytes: u64,
    /// Deepest nesting of arrays in cells/structs.
    pub max_depth: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_inflated_bytes: 2 << 30,
            max_depth: 64,
        }
    }
}

/// Byte order of a MAT file, from its endian indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }
    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }
}

const HEADER_LEN: usize = 128;
const HDF5_SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Reads and parses the MAT file at `path` with default limits.
pub fn read_mat_file(path: &Path) -> Result<MatFile, MatError> {
    read_mat_file_with(path, &ReadOptions::default())
}

pub fn read_mat_file_with(path: &Path, opts: &ReadOptions) -> Result<MatFile, MatError> {
    let bytes = std::fs::read(path).map_err(|source| MatError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes, path.to_path_buf(), opts)
}

/// Parses MAT bytes held in memory; `name_for_errors` stands for the file in messages.
pub fn read_mat_bytes(bytes: &[u8], name_for_errors: &str) -> Result<MatFile, MatError> {
    parse(
        bytes,
        PathBuf::from(name_for_errors),
        &ReadOptions::default(),
    )
}

pub fn read_mat_bytes_with(
    bytes: &[u8],
    name_for_errors: &str,
    opts: &ReadOptions,
) -> Result<MatFile, MatError> {
    parse(bytes, PathBuf::from(name_for_errors), opts)
}

fn is_v73(bytes: &[u8]) -> bool {
    let sig_at = |off: usize| bytes.get(off..off + 8).is_some_and(|s| s == HDF5_SIGNATURE);
    bytes.starts_with(b"MATLAB 7.3") || sig_at(0) || sig_at(512)
}

fn parse(bytes: &[u8], path: PathBuf, opts: &ReadOptions) -> Result<MatFile, MatError> {
    if is_v73(bytes) {
        return Err(MatError::V73 { path });
    }
    if bytes.len() < HEADER_LEN {
        return Err(MatError::NotLevel5 {
            path,
            reason: format!(
                "the file has {} bytes, fewer than the 128-byte header",
                bytes.len()
            ),
        });
    }
    let endian = match &bytes[126..128] {
        b"IM" => Endian::Little,
        b"MI" => Endian::Big,
        other => {
            return Err(MatError::NotLevel5 {
                path,
                reason: format!(
                    "the endian indicator at byte 126 is {other:02x?}, expected \"IM\" or \"MI\" \
                     (a Level-4 MAT file or not a MAT file at all)"
                ),
            })
        }
    };
    let version = endian.u16([bytes[124], bytes[125]]);
    if version != 0x0100 {
        return Err(MatError::NotLevel5 {
            path,
            reason: format!("the version field at byte 124 is {version:#06x}, expected 0x0100"),
        });
    }
    let header_text = String::from_utf8_lossy(&bytes[..116])
        .trim_end_matches([' ', '\0'])
        .to_string();

    let parser = Parser {
        path: &path,
        endian,
        opts,
    };
    let mut variables = Vec::new();
    let top = Region {
        data: bytes,
        compressed_at: None,
    };
    let mut pos = HEADER_LEN;
    while pos < bytes.len() {
        // MATLAB pads the last element; a few trailing zero bytes are not an element.
        if bytes.len() - pos < 8 && bytes[pos..].iter().all(|&b| b == 0) {
            break;
        }
        let el = parser.element(&top, pos, bytes.len())?;
        match el.ty {
            mi::MATRIX => {
                let (name, value) = parser.matrix(&top, &el, 0)?;
                variables.push(Variable { name, value });
                pos = el.next;
            }
            mi::COMPRESSED => {
                let inflated = parser.inflate(el.data(bytes), pos as u64)?;
                let region = Region {
                    data: &inflated,
                    compressed_at: Some(pos as u64),
                };
                let mut ipos = 0;
                while ipos < inflated.len() {
                    let inner = parser.element(&region, ipos, inflated.len())?;
                    if inner.ty != mi::MATRIX {
                        return Err(parser.malformed(
                            &region,
                            ipos,
                            "compressed variable",
                            format!(
                                "inflated element has type {}, expected miMATRIX (14)",
                                inner.ty
                            ),
                        ));
                    }
                    let (name, value) = parser.matrix(&region, &inner, 0)?;
                    variables.push(Variable { name, value });
                    ipos = inner.next;
                }
                // Compressed elements are not padded: the next tag follows directly.
                pos = el.data_start + el.len;
            }
            other => {
                return Err(parser.malformed(
                    &top,
                    pos,
                    "top-level data element",
                    format!("type {other}, expected miMATRIX (14) or miCOMPRESSED (15)"),
                ))
            }
        }
    }
    Ok(MatFile {
        path,
        header_text,
        endian,
        variables,
    })
}

/// Bytes being parsed: the file itself, or the inflated content of a compressed element.
struct Region<'b> {
    data: &'b [u8],
    compressed_at: Option<u64>,
}

impl Region<'_> {
    fn pos(&self, offset: usize) -> Pos {
        Pos {
            offset: offset as u64,
            compressed_at: self.compressed_at,
        }
    }
}

/// One data element: its type and where its data lies in the region.
struct Element {
    ty: u32,
    data_start: usize,
    len: usize,
    /// Where the next element starts (after padding).
    next: usize,
}

impl Element {
    fn data<'b>(&self, region_data: &'b [u8]) -> &'b [u8] {
        &region_data[self.data_start..self.data_start + self.len]
    }
}

struct Parser<'p> {
    path: &'p Path,
    endian: Endian,
    opts: &'p ReadOptions,
}

impl Parser<'_> {
    fn malformed(&self, r: &Region, at: usize, what: &str, detail: String) -> MatError {
        MatError::Malformed {
            path: self.path.to_path_buf(),
            at: r.pos(at),
            what: what.to_string(),
            detail,
        }
    }

    fn truncated(
        &self,
        r: &Region,
        at: usize,
        what: &str,
        needed: usize,
        available: usize,
    ) -> MatError {
        MatError::Truncated {
            path: self.path.to_path_buf(),
            at: r.pos(at),
            what: what.to_string(),
            needed: needed as u64,
            available: available as u64,
        }
    }

    fn word(&self, d: &[u8], at: usize) -> u32 {
        self.endian.u32([d[at], d[at + 1], d[at + 2], d[at + 3]])
    }

    /// Reads the tag at `pos` (which must lie before `end`) and bounds its data by `end`.
    fn element(&self, r: &Region, pos: usize, end: usize) -> Result<Element, MatError> {
        let avail = end.saturating_sub(pos);
        if avail < 8 {
            return Err(self.truncated(r, pos, "a data-element tag", 8, avail));
        }
        let w0 = self.word(r.data, pos);
        if w0 >> 16 != 0 {
            // Small data element: type and size packed in one word, data in the next 4 bytes.
            let len = (w0 >> 16) as usize;
            if len > 4 {
                return Err(self.malformed(
                    r,
                    pos,
                    "small data element",
                    format!("packed size {len} is larger than 4 bytes"),
                ));
            }
            return Ok(Element {
                ty: w0 & 0xffff,
                data_start: pos + 4,
                len,
                next: pos + 8,
            });
        }
        let len = self.word(r.data, pos + 4) as usize;
        let data_start = pos + 8;
        if len > end - data_start {
            return Err(self.truncated(
                r,
                pos,
                &format!("the data of a type-{w0} element"),
                len,
                end - data_start,
            ));
        }
        // Padding to 8 bytes; a missing pad at the very end of a region is tolerated.
        let next = (data_start + len)
            .checked_next_multiple_of(8)
            .unwrap_or(end)
            .min(end);
        Ok(Element {
            ty: w0,
            data_start,
            len,
            next,
        })
    }

    fn inflate(&self, compressed: &[u8], at: u64) -> Result<Vec<u8>, MatError> {
        let limit = self.opts.max_inflated_bytes;
        let mut out = Vec::new();
        let mut decoder = flate2::read::ZlibDecoder::new(compressed).take(limit.saturating_add(1));
        decoder
            .read_to_end(&mut out)
            .map_err(|e| MatError::Inflate {
                path: self.path.to_path_buf(),
                at,
                detail: e.to_string(),
            })?;
        if out.len() as u64 > limit {
            return Err(MatError::TooLarge {
                path: self.path.to_path_buf(),
                at,
                limit,
            });
        }
        Ok(out)
    }

    /// Reads the subelement at `*pos` inside a matrix, checking its type is one of `types`.
    fn sub(
        &self,
        r: &Region,
        pos: &mut usize,
        end: usize,
        what: &str,
        types: &[u32],
    ) -> Result<Element, MatError> {
        if *pos >= end {
            return Err(self.truncated(r, *pos, what, 8, 0));
        }
        let el = self.element(r, *pos, end)?;
        if !types.contains(&el.ty) {
            return Err(self.malformed(
                r,
                *pos,
                what,
                format!("data type {}, expected one of {types:?}", el.ty),
            ));
        }
        *pos = el.next;
        Ok(el)
    }

    /// Parses the content of an `miMATRIX` element into (name, array).
    fn matrix(
        &self,
        r: &Region,
        el: &Element,
        depth: usize,
    ) -> Result<(String, MatArray), MatError> {
        let start = el.data_start;
        if depth > self.opts.max_depth {
            return Err(MatError::TooDeep {
                path: self.path.to_path_buf(),
                at: r.pos(start),
                limit: self.opts.max_depth,
            });
        }
        if el.len == 0 {
            // MATLAB writes `[]` inside cells and structs as an empty miMATRIX element.
            return Ok((String::new(), MatArray::empty()));
        }
        let end = start + el.len;
        let mut pos = start;
        let d = r.data;

        let flags_el = self.sub(r, &mut pos, end, "array flags", &[mi::UINT32])?;
        if flags_el.len != 8 {
            return Err(self.malformed(
                r,
                start,
                "array flags",
                format!("{} bytes, expected 8", flags_el.len),
            ));
        }
        let flags = self.word(d, flags_el.data_start);
        let class = (flags & 0xff) as u8;
        let complex = flags & mx::FLAG_COMPLEX != 0;
        let logical = flags & mx::FLAG_LOGICAL != 0;

        let (dims, numel) = self.dims(r, &mut pos, end)?;

        let name_el = self.sub(r, &mut pos, end, "array name", &[mi::INT8, mi::UINT8])?;
        let name = String::from_utf8_lossy(name_el.data(d))
            .trim_end_matches('\0')
            .to_string();

        let data = match class {
            mx::DOUBLE..=mx::UINT64 if complex => MatData::Unsupported {
                class,
                what: "complex array".to_string(),
            },
            mx::DOUBLE..=mx::UINT64 => {
                let at = pos;
                let el = self.sub(r, &mut pos, end, "numeric data", NUMERIC_TYPES)?;
                let values = self
                    .numeric(class, el.ty, el.data(d))
                    .map_err(|detail| self.malformed(r, at, "numeric data", detail))?;
                if values.len() != numel {
                    return Err(self.malformed(
                        r,
                        at,
                        "numeric data",
                        format!(
                            "{} values for dimensions {dims:?} ({numel} elements)",
                            values.len()
                        ),
                    ));
                }
                if logical {
                    MatData::Logical(values.nonzero())
                } else {
                    MatData::Numeric(values)
                }
            }
            mx::CHAR => self.char_data(r, &mut pos, end, &dims, numel)?,
            mx::CELL => {
                self.check_count(r, pos, end, numel, "cell elements")?;
                let mut items = Vec::with_capacity(numel);
                for _ in 0..numel {
                    let el = self.sub(r, &mut pos, end, "cell element", &[mi::MATRIX])?;
                    items.push(self.matrix(r, &el, depth + 1)?.1);
                }
                MatData::Cell(items)
            }
            mx::STRUCT | mx::OBJECT => self.struct_data(r, &mut pos, end, class, numel, depth)?,
            mx::SPARSE => MatData::Unsupported {
                class,
                what: "sparse array".to_string(),
            },
            mx::FUNCTION => MatData::Unsupported {
                class,
                what: "function handle".to_string(),
            },
            mx::OPAQUE => MatData::Unsupported {
                class,
                what: "opaque (classdef) value".to_string(),
            },
            other => {
                return Err(self.malformed(
                    r,
                    start,
                    "array flags",
                    format!("unknown array class {other}"),
                ));
            }
        };
        Ok((name, MatArray { dims, data }))
    }

    /// Parses the dimensions subelement at `pos`: the dimensions (a single one gets a
    /// trailing 1, as MATLAB arrays have at least two) and the element count.
    fn dims(
        &self,
        r: &Region,
        pos: &mut usize,
        end: usize,
    ) -> Result<(Vec<usize>, usize), MatError> {
        let d = r.data;
        let dims_at = *pos;
        let dims_el = self.sub(r, pos, end, "dimensions", &[mi::INT32])?;
        if dims_el.len == 0 || !dims_el.data(d).chunks_exact(4).remainder().is_empty() {
            return Err(self.malformed(
                r,
                dims_at,
                "dimensions",
                format!("{} bytes, expected a positive multiple of 4", dims_el.len),
            ));
        }
        let mut dims = Vec::with_capacity(dims_el.len / 4);
        for k in 0..dims_el.len / 4 {
            let v = self.word(d, dims_el.data_start + 4 * k) as i32;
            if v < 0 {
                return Err(self.malformed(
                    r,
                    dims_at,
                    "dimensions",
                    format!("dimension {} is negative ({v})", k + 1),
                ));
            }
            dims.push(v as usize);
        }
        if dims.len() == 1 {
            dims.push(1);
        }
        let numel = dims
            .iter()
            .try_fold(1usize, |acc, &x| acc.checked_mul(x))
            .ok_or_else(|| {
                self.malformed(
                    r,
                    dims_at,
                    "dimensions",
                    format!("{dims:?} overflow the element count"),
                )
            })?;
        Ok((dims, numel))
    }

    /// Parses the data of a char array from `pos`, checking it against the dimensions.
    fn char_data(
        &self,
        r: &Region,
        pos: &mut usize,
        end: usize,
        dims: &[usize],
        numel: usize,
    ) -> Result<MatData, MatError> {
        let d = r.data;
        let at = *pos;
        // An empty char array may omit its data element.
        if numel == 0 && *pos >= end {
            Ok(MatData::Char(Vec::new()))
        } else {
            let el = self.sub(r, pos, end, "char data", CHAR_TYPES)?;
            let units = self
                .chars(el.ty, el.data(d))
                .map_err(|detail| self.malformed(r, at, "char data", detail))?;
            if units.len() != numel {
                return Err(self.malformed(
                    r,
                    at,
                    "char data",
                    format!(
                        "{} characters for dimensions {dims:?} ({numel} elements)",
                        units.len()
                    ),
                ));
            }
            Ok(MatData::Char(units))
        }
    }

    /// Parses the rest of a struct or old-style object array from `pos`: the class name
    /// (objects only), the field names and the `numel` x fields values.
    fn struct_data(
        &self,
        r: &Region,
        pos: &mut usize,
        end: usize,
        class: u8,
        numel: usize,
        depth: usize,
    ) -> Result<MatData, MatError> {
        let d = r.data;
        let class_name = if class == mx::OBJECT {
            let el = self.sub(
                r,
                pos,
                end,
                "object class name",
                &[mi::INT8, mi::UINT8],
            )?;
            Some(
                String::from_utf8_lossy(el.data(d))
                    .trim_end_matches('\0')
                    .to_string(),
            )
        } else {
            None
        };
        let at = *pos;
        let len_el = self.sub(r, pos, end, "field name length", &[mi::INT32])?;
        if len_el.len != 4 {
            return Err(self.malformed(
                r,
                at,
                "field name length",
                format!("{} bytes, expected 4", len_el.len),
            ));
        }
        let name_len = self.word(d, len_el.data_start) as usize;
        let at = *pos;
        let names_el = self.sub(r, pos, end, "field names", &[mi::INT8, mi::UINT8])?;
        let field_names = if names_el.len == 0 {
            Vec::new()
        } else {
            if name_len == 0
                || !names_el
                    .data(d)
                    .chunks_exact(name_len)
                    .remainder()
                    .is_empty()
            {
                return Err(self.malformed(
                    r,
                    at,
                    "field names",
                    format!(
                        "{} bytes is not a multiple of the field name length {name_len}",
                        names_el.len
                    ),
                ));
            }
            names_el
                .data(d)
                .chunks(name_len)
                .map(|c| {
                    let n = c.iter().position(|&b| b == 0).unwrap_or(c.len());
                    String::from_utf8_lossy(&c[..n]).into_owned()
                })
                .collect::<Vec<_>>()
        };
        let count = numel.checked_mul(field_names.len()).ok_or_else(|| {
            self.malformed(
                r,
                at,
                "struct",
                format!("{numel} elements x {} fields overflow", field_names.len()),
            )
        })?;
        self.check_count(r, *pos, end, count, "struct field values")?;
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            let el = self.sub(r, pos, end, "struct field value", &[mi::MATRIX])?;
            values.push(self.matrix(r, &el, depth + 1)?.1);
        }
        Ok(MatData::Struct(StructArray {
            class_name,
            field_names,
            values,
        }))
    }

    /// Rejects element counts that cannot fit in the remaining bytes (each needs a tag).
    fn check_count(
        &self,
        r: &Region,
        pos: usize,
        end: usize,
        count: usize,
        what: &str,
    ) -> Result<(), MatError> {
        let avail = end.saturating_sub(pos);
        if count > avail / 8 {
            return Err(self.truncated(
                r,
                pos,
                &format!("{count} {what}"),
                count.saturating_mul(8),
                avail,
            ));
        }
        Ok(())
    }

    fn numeric(&self, class: u8, ty: u32, bytes: &[u8]) -> Result<NumericData, String> {
        let e = self.endian;
        Ok(match class {
            mx::DOUBLE => NumericData::F64(decode(ty, bytes, e)?),
            mx::SINGLE => NumericData::F32(decode(ty, bytes, e)?),
            mx::INT8 => NumericData::I8(decode(ty, bytes, e)?),
            mx::UINT8 => NumericData::U8(decode(ty, bytes, e)?),
            mx::INT16 => NumericData::I16(decode(ty, bytes, e)?),
            mx::UINT16 => NumericData::U16(decode(ty, bytes, e)?),
            mx::INT32 => NumericData::I32(decode(ty, bytes, e)?),
            mx::UINT32 => NumericData::U32(decode(ty, bytes, e)?),
            mx::INT64 => NumericData::I64(decode(ty, bytes, e)?),
            _ => NumericData::U64(decode(ty, bytes, e)?),
        })
    }

    fn chars(&self, ty: u32, bytes: &[u8]) -> Result<Vec<u16>, String> {
        match ty {
            mi::UTF8 => std::str::from_utf8(bytes)
                .map(|s| s.encode_utf16().collect())
                .map_err(|e| format!("invalid UTF-8: {e}")),
            mi::UINT8 | mi::INT8 => Ok(bytes.iter().map(|&b| b as u16).collect()),
            mi::UINT16 | mi::UTF16 => decode::<u16>(mi::UINT16, bytes, self.endian),
            _ => {
                let code_points: Vec<u32> = decode(mi::UINT32, bytes, self.endian)?;
                let mut s = String::new();
                for c in code_points {
                    s.push(
                        char::from_u32(c)
                            .ok_or_else(|| format!("invalid UTF-32 code point {c:#x}"))?,
                    );
                }
                Ok(s.encode_utf16().collect())
            }
        }
    }
}

const NUMERIC_TYPES: &[u32] = &[
    mi::INT8,
    mi::UINT8,
    mi::INT16,
    mi::UINT16,
    mi::INT32,
    mi::UINT32,
    mi::SINGLE,
    mi::DOUBLE,
    mi::INT64,
    mi::UINT64,
];
const CHAR_TYPES: &[u32] = &[
    mi::UTF8,
    mi::UINT8,
    mi::INT8,
    mi::UINT16,
    mi::UTF16,
    mi::UTF32,
];

/// Conversion from the stored element type to the array's class (MATLAB stores, e.g.,
/// integral doubles as miUINT8 to save space). Out-of-range values saturate.
trait FromStored: Sized {
    fn from_i64(v: i64) -> Self;
    fn from_u64(v: u64) -> Self;
    fn from_f64(v: f64) -> Self;
}

macro_rules! from_stored {
    ($($t:ty),*) => {$(
        impl FromStored for $t {
            fn from_i64(v: i64) -> Self { v as $t }
            fn from_u64(v: u64) -> Self { v as $t }
            fn from_f64(v: f64) -> Self { v as $t }
        }
    )*};
}
from_stored!(f64, f32, i8, u8, i16, u16, i32, u32, i64, u64);

// `v as i8` etc. on integers wraps; for conversions between integer types that is only
// reached by malformed files, so clamp explicitly to MATLAB's saturating semantics.
fn clamp_i64<T: FromStored + Bounded>(v: i64) -> T {
    if v < T::MIN_I64 {
        T::from_i64(T::MIN_I64)
    } else if v as i128 > T::MAX_I128 {
        T::from_i64(T::MAX_I128 as i64)
    } else {
        T::from_i64(v)
    }
}

fn clamp_u64<T: FromStored + Bounded>(v: u64) -> T {
    if v as i128 > T::MAX_I128 {
        T::from_u64(T::MAX_I128 as u64)
    } else {
        T::from_u64(v)
    }
}

/// Integer range of a target type (floats are unbounded here).
trait Bounded {
    const MIN_I64: i64;
    const MAX_I128: i128;
}

macro_rules! bounded {
    ($($t:ty => $min:expr, $max:expr);*) => {$(
        impl Bounded for $t { const MIN_I64: i64 = $min; const MAX_I128: i128 = $max; }
    )*};
}
bounded!(
    f64 => i64::MIN, i128::MAX;
    f32 => i64::MIN, i128::MAX;
    i8 => i8::MIN as i64, i8::MAX as i128;
    u8 => 0, u8::MAX as i128;
    i16 => i16::MIN as i64, i16::MAX as i128;
    u16 => 0, u16::MAX as i128;
    i32 => i32::MIN as i64, i32::MAX as i128;
    u32 => 0, u32::MAX as i128;
    i64 => i64::MIN, i64::MAX as i128;
    u64 => 0, u64::MAX as i128
);

fn decode<T: FromStored + Bounded>(ty: u32, bytes: &[u8], e: Endian) -> Result<Vec<T>, String> {
    let size = match ty {
        mi::INT8 | mi::UINT8 => 1,
        mi::INT16 | mi::UINT16 => 2,
        mi::INT32 | mi::UINT32 | mi::SINGLE => 4,
        mi::DOUBLE | mi::INT64 | mi::UINT64 => 8,
        other => return Err(format!("data type {other} is not numeric")),
    };
    if !bytes.chunks_exact(size).remainder().is_empty() {
        return Err(format!(
            "{} bytes is not a multiple of the element size {size}",
            bytes.len()
        ));
    }
    let le = e == Endian::Little;
    macro_rules! rd {
        ($t:ty, $c:expr) => {{
            let a: [u8; std::mem::size_of::<$t>()] =
                $c.try_into().map_err(|_| "element size".to_string())?;
            if le {
                <$t>::from_le_bytes(a)
            } else {
                <$t>::from_be_bytes(a)
            }
        }};
    }
    bytes
        .chunks_exact(size)
        .map(|c| {
            Ok(match ty {
                mi::INT8 => clamp_i64(rd!(i8, c) as i64),
                mi::UINT8 => clamp_u64(rd!(u8, c) as u64),
                mi::INT16 => clamp_i64(rd!(i16, c) as i64),
                mi::UINT16 => clamp_u64(rd!(u16, c) as u64),
                mi::INT32 => clamp_i64(rd!(i32, c) as i64),
                mi::UINT32 => clamp_u64(rd!(u32, c) as u64),
                mi::INT64 => clamp_i64(rd!(i64, c)),
                mi::UINT64 => clamp_u64(rd!(u64, c)),
                mi::SINGLE => T::from_f64(rd!(f32, c) as f64),
                _ => T::from_f64(rd!(f64, c)),
            })
        })
        .collect()
}
