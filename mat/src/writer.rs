//! Writing Level-5 MAT files that MATLAB and scipy's `loadmat` read.
//!
//! Always little-endian (`IM`), version `0x0100`, one top-level element per variable,
//! optionally zlib-compressed (`miCOMPRESSED`, as MATLAB's default `-v7` does). Char data
//! is stored as `miUTF8` (what scipy writes; scipy misreads non-ASCII `miUINT16` char data
//! with its default codec). Files are written atomically (temp file + rename, see
//! [`super::atomic`]).
//!
//! Numeric storage follows MATLAB's `save` (MathWorks, "MAT-File Format", "Automatic
//! Compression of Numeric Data"): a double array whose values are all whole numbers is
//! stored in the smallest integer type that holds them, its class staying double, so
//! MATLAB and our reader give back the same doubles. Readers that return the stored type,
//! like scipy's `loadmat` with its default options, see integers, as on files MATLAB
//! wrote. Every other numeric array is stored in its own class.

use std::io::Write;
use std::path::Path;

use super::atomic::write_atomically;
use super::error::MatError;
use super::value::{MatArray, MatData, NumericData, StructArray, Variable};
use super::{mi, mx};

/// Whether each variable is stored zlib-compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    None,
    #[default]
    Zlib,
}

/// Writes `variables` to `path` atomically: a reader never sees a half-written file.
pub fn write_mat_file(
    path: &Path,
    variables: &[Variable],
    compression: Compression,
) -> Result<(), MatError> {
    let bytes = write_mat_bytes(variables, compression)?;
    write_atomically(path, &bytes, true).map_err(|source| MatError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The bytes of a MAT file holding `variables`.
pub fn write_mat_bytes(
    variables: &[Variable],
    compression: Compression,
) -> Result<Vec<u8>, MatError> {
    write_mat_bytes_with_header(variables, compression, &header_text())
}

/// Like [`write_mat_bytes`] with a given header text (cut to 116 bytes) instead of the
/// creation time, for writers that need the same bytes from the same input. Readers
/// treat the text as free-form.
pub fn write_mat_bytes_with_header(
    variables: &[Variable],
    compression: Compression,
    header_text: &str,
) -> Result<Vec<u8>, MatError> {
    let mut out = header(header_text);
    for v in variables {
        check_name(&v.name, "variable name", &v.name)?;
        let mut element = Vec::new();
        let mut ctx = Ctx {
            variable: &v.name,
            path: v.name.clone(),
        };
        matrix(&mut element, &v.name, &v.value, &mut ctx)?;
        match compression {
            Compression::None => out.extend_from_slice(&element),
            Compression::Zlib => {
                let mut enc =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(&element)
                    .and_then(|_| enc.finish())
                    .map_err(|e| unwritable(&ctx, format!("compression failed: {e}")))
                    .and_then(|z| {
                        tag(&mut out, mi::COMPRESSED, z.len(), &ctx)?;
                        out.extend_from_slice(&z);
                        Ok(())
                    })?;
            }
        }
    }
    Ok(out)
}

/// The header text MATLAB writes: what wrote the file, and when (UTC).
fn header_text() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "MATLAB 5.0 MAT-file, Platform: {}, Created on: {} UTC",
        std::env::consts::OS,
        asctime(secs)
    )
}

/// `Thu Jan  1 00:00:00 1970` for Unix time `secs` (proleptic Gregorian, UTC).
pub(crate) fn asctime(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        year
    )
}

fn header(text: &str) -> Vec<u8> {
    let mut h = vec![b' '; 116];
    let t = text.as_bytes();
    // Cut at a char boundary so the text stays valid UTF-8.
    let mut n = t.len().min(116);
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    h[..n].copy_from_slice(&t[..n]);
    h.extend_from_slice(&[0u8; 8]); // no subsystem data
    h.extend_from_slice(&0x0100u16.to_le_bytes());
    h.extend_from_slice(b"IM");
    h
}

/// Where in the variable we are, for error messages.
struct Ctx<'a> {
    variable: &'a str,
    path: String,
}

fn unwritable(ctx: &Ctx, reason: String) -> MatError {
    MatError::Unwritable {
        variable: ctx.variable.to_string(),
        reason: format!("at `{}`: {reason}", ctx.path),
    }
}

/// MATLAB identifiers: a letter, then letters, digits or underscores, at most 63 bytes.
fn check_name(name: &str, what: &str, variable: &str) -> Result<(), MatError> {
    let ok = name.len() <= 63
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(MatError::Unwritable {
            variable: variable.to_string(),
            reason: format!("{what} `{name}` is not a MATLAB identifier (a letter, then letters, digits or _; at most 63 characters)"),
        })
    }
}

fn tag(out: &mut Vec<u8>, ty: u32, len: usize, ctx: &Ctx) -> Result<(), MatError> {
    let len32 = u32::try_from(len).map_err(|_| {
        unwritable(
            ctx,
            format!("{len} bytes exceed the 4 GiB limit of a Level-5 data element"),
        )
    })?;
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&len32.to_le_bytes());
    Ok(())
}

fn pad8(out: &mut Vec<u8>) {
    let pad = (8 - out.len() % 8) % 8;
    out.resize(out.len() + pad, 0);
}

/// A data element; 1..=4 bytes go in the packed small-element form, like MATLAB does.
fn element(out: &mut Vec<u8>, ty: u32, data: &[u8], ctx: &Ctx) -> Result<(), MatError> {
    if (1..=4).contains(&data.len()) {
        out.extend_from_slice(&(ty | ((data.len() as u32) << 16)).to_le_bytes());
        out.extend_from_slice(data);
        out.resize(out.len() + 4 - data.len(), 0);
    } else {
        tag(out, ty, data.len(), ctx)?;
        out.extend_from_slice(data);
        pad8(out);
    }
    Ok(())
}

fn le_bytes<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    let mut b = Vec::with_capacity(v.len() * N);
    for &x in v {
        b.extend_from_slice(&f(x));
    }
    b
}

/// Appends one `miMATRIX` element (tag included) for `a` named `name`.
fn matrix(out: &mut Vec<u8>, name: &str, a: &MatArray, ctx: &mut Ctx) -> Result<(), MatError> {
    let numel = a
        .numel()
        .ok_or_else(|| unwritable(ctx, format!("dimensions {:?} overflow", a.dims)))?;
    if a.dims.len() < 2 {
        return Err(unwritable(
            ctx,
            format!("dimensions {:?}: MATLAB arrays have at least two", a.dims),
        ));
    }
    let mut body = Vec::new();
    let (class, flags_extra) = match &a.data {
        MatData::Numeric(n) => (numeric_class(n), 0),
        MatData::Logical(_) => (mx::UINT8, mx::FLAG_LOGICAL),
        MatData::Char(_) => (mx::CHAR, 0),
        MatData::Cell(_) => (mx::CELL, 0),
        MatData::Struct(StructArray {
            class_name: Some(_),
            ..
        }) => (mx::OBJECT, 0),
        MatData::Struct(_) => (mx::STRUCT, 0),
        MatData::Unsupported { what, .. } => {
            return Err(unwritable(ctx, format!("a {what} cannot be written")));
        }
    };
    let mut flags = Vec::with_capacity(8);
    flags.extend_from_slice(&(class as u32 | flags_extra).to_le_bytes());
    flags.extend_from_slice(&0u32.to_le_bytes());
    element(&mut body, mi::UINT32, &flags, ctx)?;
    let mut dims = Vec::with_capacity(a.dims.len() * 4);
    for &d in &a.dims {
        let d = i32::try_from(d)
            .map_err(|_| unwritable(ctx, format!("dimension {d} exceeds 2^31-1")))?;
        dims.extend_from_slice(&d.to_le_bytes());
    }
    element(&mut body, mi::INT32, &dims, ctx)?;
    element(&mut body, mi::INT8, name.as_bytes(), ctx)?;

    let count_mismatch = |len: usize, ctx: &Ctx| {
        unwritable(
            ctx,
            format!(
                "{len} values for dimensions {:?} ({numel} elements)",
                a.dims
            ),
        )
    };
    match &a.data {
        MatData::Numeric(n) => {
            if n.len() != numel {
                return Err(count_mismatch(n.len(), ctx));
            }
            let (ty, bytes) = numeric_bytes(n);
            element(&mut body, ty, &bytes, ctx)?;
        }
        MatData::Logical(b) => {
            if b.len() != numel {
                return Err(count_mismatch(b.len(), ctx));
            }
            let bytes: Vec<u8> = b.iter().map(|&x| u8::from(x)).collect();
            element(&mut body, mi::UINT8, &bytes, ctx)?;
        }
        MatData::Char(units) => {
            if units.len() != numel {
                return Err(count_mismatch(units.len(), ctx));
            }
            // miUTF8 as scipy writes it (and reads reliably); only text that is not valid
            // UTF-16 (a lone surrogate) falls back to raw miUINT16 code units.
            match String::from_utf16(units) {
                Ok(text) => element(&mut body, mi::UTF8, text.as_bytes(), ctx)?,
                Err(_) => element(
                    &mut body,
                    mi::UINT16,
                    &le_bytes(units, u16::to_le_bytes),
                    ctx,
                )?,
            }
        }
        MatData::Cell(items) => {
            if items.len() != numel {
                return Err(count_mismatch(items.len(), ctx));
            }
            let base = ctx.path.clone();
            for (i, item) in items.iter().enumerate() {
                ctx.path = format!("{base}{{{}}}", i + 1);
                matrix(&mut body, "", item, ctx)?;
            }
            ctx.path = base;
        }
        MatData::Struct(s) => {
            if let Some(c) = &s.class_name {
                check_name(c, "object class name", ctx.variable)?;
                element(&mut body, mi::INT8, c.as_bytes(), ctx)?;
            }
            let nf = s.field_names.len();
            let longest = s.field_names.iter().map(|f| f.len()).max().unwrap_or(0);
            for f in &s.field_names {
                check_name(f, "field name", ctx.variable)?;
            }
            // MATLAB's field-name slot is 32 bytes (31 characters + NUL); longer names
            // (allowed since R2008) use a 64-byte slot.
            let slot = if longest < 32 { 32 } else { 64 };
            element(&mut body, mi::INT32, &(slot as i32).to_le_bytes(), ctx)?;
            let mut names = vec![0u8; slot * nf];
            for (k, f) in s.field_names.iter().enumerate() {
                names[k * slot..k * slot + f.len()].copy_from_slice(f.as_bytes());
            }
            element(&mut body, mi::INT8, &names, ctx)?;
            if numel.checked_mul(nf) != Some(s.values.len()) {
                return Err(unwritable(
                    ctx,
                    format!(
                        "{} field values for {numel} elements x {nf} fields",
                        s.values.len()
                    ),
                ));
            }
            let base = ctx.path.clone();
            for (k, v) in s.values.iter().enumerate() {
                let (i, f) = (k / nf.max(1), k % nf.max(1));
                ctx.path = if numel == 1 {
                    format!("{base}.{}", s.field_names[f])
                } else {
                    format!("{base}({}).{}", i + 1, s.field_names[f])
                };
                matrix(&mut body, "", v, ctx)?;
            }
            ctx.path = base;
        }
        MatData::Unsupported { .. } => {}
    }
    tag(out, mi::MATRIX, body.len(), ctx)?;
    out.extend_from_slice(&body);
    Ok(())
}

fn numeric_class(n: &NumericData) -> u8 {
    match n {
        NumericData::F64(_) => mx::DOUBLE,
        NumericData::F32(_) => mx::SINGLE,
        NumericData::I8(_) => mx::INT8,
        NumericData::U8(_) => mx::UINT8,
        NumericData::I16(_) => mx::INT16,
        NumericData::U16(_) => mx::UINT16,
        NumericData::I32(_) => mx::INT32,
        NumericData::U32(_) => mx::UINT32,
        NumericData::I64(_) => mx::INT64,
        NumericData::U64(_) => mx::UINT64,
    }
}

fn numeric_bytes(n: &NumericData) -> (u32, Vec<u8>) {
    match n {
        NumericData::F64(v) => match whole_number_storage(v) {
            Some(mi::UINT8) => (mi::UINT8, v.iter().map(|&x| x as u8).collect()),
            Some(mi::INT8) => (mi::INT8, le_bytes(v, |x| (x as i8).to_le_bytes())),
            Some(mi::UINT16) => (mi::UINT16, le_bytes(v, |x| (x as u16).to_le_bytes())),
            Some(mi::INT16) => (mi::INT16, le_bytes(v, |x| (x as i16).to_le_bytes())),
            Some(mi::UINT32) => (mi::UINT32, le_bytes(v, |x| (x as u32).to_le_bytes())),
            Some(mi::INT32) => (mi::INT32, le_bytes(v, |x| (x as i32).to_le_bytes())),
            _ => (mi::DOUBLE, le_bytes(v, f64::to_le_bytes)),
        },
        NumericData::F32(v) => (mi::SINGLE, le_bytes(v, f32::to_le_bytes)),
        NumericData::I8(v) => (mi::INT8, le_bytes(v, i8::to_le_bytes)),
        NumericData::U8(v) => (mi::UINT8, v.clone()),
        NumericData::I16(v) => (mi::INT16, le_bytes(v, i16::to_le_bytes)),
        NumericData::U16(v) => (mi::UINT16, le_bytes(v, u16::to_le_bytes)),
        NumericData::I32(v) => (mi::INT32, le_bytes(v, i32::to_le_bytes)),
        NumericData::U32(v) => (mi::UINT32, le_bytes(v, u32::to_le_bytes)),
        NumericData::I64(v) => (mi::INT64, le_bytes(v, i64::to_le_bytes)),
        NumericData::U64(v) => (mi::UINT64, le_bytes(v, u64::to_le_bytes)),
    }
}

/// The integer type a double array `v` is stored in, or `None` when it stays `miDOUBLE`:
/// the first of uint8, int8, uint16, int16, uint32, int32 that holds every value, i.e.
/// the smallest, unsigned before signed at equal size (the spec's example stores the
/// doubles 1..12 as `miUINT8`). Whole numbers beyond 32 bits, NaN, infinities, fractions
/// and -0.0 (an integer would lose its sign) keep the array double; so does an empty array,
/// so that empty event lists still come back as doubles from readers that return the
/// stored type. Every one of these integer types converts back to f64 exactly.
fn whole_number_storage(v: &[f64]) -> Option<u32> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &x in v {
        let whole = x.is_finite() && x.fract() == 0.0 && !(x == 0.0 && x.is_sign_negative());
        if !whole {
            return None;
        }
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if v.is_empty() {
        return None;
    }
    let fits = |min: f64, max: f64| lo >= min && hi <= max;
    [
        (mi::UINT8, 0.0, f64::from(u8::MAX)),
        (mi::INT8, f64::from(i8::MIN), f64::from(i8::MAX)),
        (mi::UINT16, 0.0, f64::from(u16::MAX)),
        (mi::INT16, f64::from(i16::MIN), f64::from(i16::MAX)),
        (mi::UINT32, 0.0, f64::from(u32::MAX)),
        (mi::INT32, f64::from(i32::MIN), f64::from(i32::MAX)),
    ]
    .into_iter()
    .find(|&(_, min, max)| fits(min, max))
    .map(|(ty, _, _)| ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asctime_matches_known_dates() {
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        // 2000-02-29 12:34:56 UTC, a Tuesday in a leap year.
        assert_eq!(asctime(951_827_696), "Tue Feb 29 12:34:56 2000");
        // 2024-12-31 23:59:59 UTC.
        assert_eq!(asctime(1_735_689_599), "Tue Dec 31 23:59:59 2024");
    }

    #[test]
    fn whole_number_doubles_get_the_first_integer_type_that_holds_them() {
        let cases: &[(&[f64], Option<u32>)] = &[
            (&[0.0, 1.0, 255.0], Some(mi::UINT8)),
            (&[-128.0, 127.0], Some(mi::INT8)),
            (&[-1.0, 128.0], Some(mi::INT16)),
            (&[0.0, 256.0], Some(mi::UINT16)),
            (&[65_535.0], Some(mi::UINT16)),
            (&[-32_768.0, 32_767.0], Some(mi::INT16)),
            (&[-1.0, 32_768.0], Some(mi::INT32)),
            (&[65_536.0, 4_294_967_295.0], Some(mi::UINT32)),
            (&[-2_147_483_648.0, 2_147_483_647.0], Some(mi::INT32)),
            // Whole, but outside every 32-bit type: stays double.
            (&[4_294_967_296.0], None),
            (&[-2_147_483_649.0], None),
            (&[-1.0, 4_294_967_295.0], None),
            (&[1.0, 0.5], None),
            (&[1.0, f64::NAN], None),
            (&[f64::INFINITY], None),
            (&[f64::NEG_INFINITY, 0.0], None),
            (&[1.0, -0.0], None),
            (&[], None),
        ];
        for (v, ty) in cases {
            assert_eq!(whole_number_storage(v), *ty, "{v:?}");
        }
    }

    #[test]
    fn narrowed_bytes_hold_the_same_values() {
        let v = vec![-300.0, 0.0, 7.0, 32_767.0];
        let (ty, bytes) = numeric_bytes(&NumericData::F64(v.clone()));
        assert_eq!(ty, mi::INT16);
        let back: Vec<f64> = bytes
            .chunks_exact(2)
            .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])))
            .collect();
        assert_eq!(back, v);
        let (ty, bytes) = numeric_bytes(&NumericData::F64(vec![0.25, 3.0]));
        assert_eq!((ty, bytes.len()), (mi::DOUBLE, 16));
    }

    #[test]
    fn header_is_128_bytes_with_version_and_endian() {
        let h = header(&header_text());
        assert_eq!(h.len(), 128);
        assert!(h.starts_with(b"MATLAB 5.0 MAT-file, Platform: "));
        assert_eq!(&h[124..128], &[0x00, 0x01, b'I', b'M']);
    }
}
