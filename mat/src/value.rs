//! The value model of a MAT file, and [`MatRef`], a checked view for reading it.
//!
//! [`MatArray`] is plain owned data with public fields, so it can be built for writing and
//! matched on directly. Reading code should prefer [`MatFile::variable`], which returns a
//! [`MatRef`]: it remembers the file and the MATLAB-style path of the node
//! (`pepANA.listOfResults{3}.repeat{1}`), so every type or field error says exactly
//! where the data did not look as expected.

use std::fmt;
use std::path::{Path, PathBuf};

use super::error::MatError;
use super::reader::Endian;

/// A parsed MAT file.
#[derive(Debug, Clone, PartialEq)]
pub struct MatFile {
    /// The file path, or the name given to an in-memory buffer; used in error messages.
    pub path: PathBuf,
    /// The 116-byte descriptive text of the header, trailing spaces and NULs removed.
    pub header_text: String,
    pub endian: Endian,
    /// Top-level variables in file order.
    pub variables: Vec<Variable>,
}

/// A named top-level array.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    pub name: String,
    pub value: MatArray,
}

impl Variable {
    pub fn new(name: impl Into<String>, value: MatArray) -> Self {
        Variable {
            name: name.into(),
            value,
        }
    }
}

/// An array of any class with its MATLAB dimensions (at least two; column-major data).
#[derive(Debug, Clone, PartialEq)]
pub struct MatArray {
    pub dims: Vec<usize>,
    pub data: MatData,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MatData {
    Numeric(NumericData),
    Logical(Vec<bool>),
    /// UTF-16 code units, column-major (MATLAB chars are UTF-16 code units).
    Char(Vec<u16>),
    Cell(Vec<MatArray>),
    /// A struct array or an old-style object (then `class_name` is set).
    Struct(StructArray),
    /// A value the reader skips (sparse, complex, function handle, opaque/classdef).
    /// Reading it through [`MatRef`] gives an error; the rest of the file is usable.
    Unsupported {
        class: u8,
        what: String,
    },
}

/// Numeric data in the array's class. Data stored in a smaller type in the file (e.g. a
/// double array stored as `miUINT8`) is converted to the class on reading.
#[derive(Debug, Clone, PartialEq)]
pub enum NumericData {
    F64(Vec<f64>),
    F32(Vec<f32>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
}

/// A struct array (element-major storage: element `i`, field `f` is
/// `values[i * field_names.len() + f]`) or an old-style object when `class_name` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct StructArray {
    pub class_name: Option<String>,
    pub field_names: Vec<String>,
    pub values: Vec<MatArray>,
}

/// The class of an array, for messages and checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatClass {
    Cell,
    Struct,
    Object,
    Char,
    Logical,
    Double,
    Single,
    Int8,
    UInt8,
    Int16,
    UInt16,
    Int32,
    UInt32,
    Int64,
    UInt64,
    /// The MAT class number of a value the reader does not model.
    Unsupported(u8),
}

impl fmt::Display for MatClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            MatClass::Cell => "cell",
            MatClass::Struct => "struct",
            MatClass::Object => "object",
            MatClass::Char => "char",
            MatClass::Logical => "logical",
            MatClass::Double => "double",
            MatClass::Single => "single",
            MatClass::Int8 => "int8",
            MatClass::UInt8 => "uint8",
            MatClass::Int16 => "int16",
            MatClass::UInt16 => "uint16",
            MatClass::Int32 => "int32",
            MatClass::UInt32 => "uint32",
            MatClass::Int64 => "int64",
            MatClass::UInt64 => "uint64",
            MatClass::Unsupported(c) => return write!(f, "unsupported class {c}"),
        };
        f.write_str(s)
    }
}

impl NumericData {
    pub fn len(&self) -> usize {
        match self {
            NumericData::F64(v) => v.len(),
            NumericData::F32(v) => v.len(),
            NumericData::I8(v) => v.len(),
            NumericData::U8(v) => v.len(),
            NumericData::I16(v) => v.len(),
            NumericData::U16(v) => v.len(),
            NumericData::I32(v) => v.len(),
            NumericData::U32(v) => v.len(),
            NumericData::I64(v) => v.len(),
            NumericData::U64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn class(&self) -> MatClass {
        match self {
            NumericData::F64(_) => MatClass::Double,
            NumericData::F32(_) => MatClass::Single,
            NumericData::I8(_) => MatClass::Int8,
            NumericData::U8(_) => MatClass::UInt8,
            NumericData::I16(_) => MatClass::Int16,
            NumericData::U16(_) => MatClass::UInt16,
            NumericData::I32(_) => MatClass::Int32,
            NumericData::U32(_) => MatClass::UInt32,
            NumericData::I64(_) => MatClass::Int64,
            NumericData::U64(_) => MatClass::UInt64,
        }
    }

    /// `value != 0` for each element (how MATLAB converts numbers to logical).
    pub fn nonzero(&self) -> Vec<bool> {
        match self {
            NumericData::F64(v) => v.iter().map(|&x| x != 0.0).collect(),
            NumericData::F32(v) => v.iter().map(|&x| x != 0.0).collect(),
            NumericData::I8(v) => v.iter().map(|&x| x != 0).collect(),
            NumericData::U8(v) => v.iter().map(|&x| x != 0).collect(),
            NumericData::I16(v) => v.iter().map(|&x| x != 0).collect(),
            NumericData::U16(v) => v.iter().map(|&x| x != 0).collect(),
            NumericData::I32(v) => v.iter().map(|&x| x != 0).collect(),
            NumericData::U32(v) => v.iter().map(|&x| x != 0).collect(),
            NumericData::I64(v) => v.iter().map(|&x| x != 0).collect(),
            NumericData::U64(v) => v.iter().map(|&x| x != 0).collect(),
        }
    }

    /// All values as `f64` (64-bit integers beyond 2^53 round, as in MATLAB's `double`).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        fn conv<T: Copy + Into<f64>>(v: &[T]) -> Vec<f64> {
            v.iter().map(|&x| x.into()).collect()
        }
        match self {
            NumericData::F64(v) => v.clone(),
            NumericData::F32(v) => conv(v),
            NumericData::I8(v) => conv(v),
            NumericData::U8(v) => conv(v),
            NumericData::I16(v) => conv(v),
            NumericData::U16(v) => conv(v),
            NumericData::I32(v) => conv(v),
            NumericData::U32(v) => conv(v),
            NumericData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            NumericData::U64(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }
}

impl MatArray {
    /// Numeric or other data with explicit dims; the writer checks that dims and data agree.
    pub fn new(dims: Vec<usize>, data: MatData) -> Self {
        MatArray { dims, data }
    }

    /// A 1x1 double.
    pub fn scalar(v: f64) -> Self {
        MatArray {
            dims: vec![1, 1],
            data: MatData::Numeric(NumericData::F64(vec![v])),
        }
    }

    /// A 1xN double row vector (1x0 when empty).
    pub fn row_f64(v: Vec<f64>) -> Self {
        MatArray {
            dims: vec![1, v.len()],
            data: MatData::Numeric(NumericData::F64(v)),
        }
    }

    /// A rows x cols double matrix from column-major data.
    pub fn matrix_f64(rows: usize, cols: usize, data: Vec<f64>) -> Self {
        MatArray {
            dims: vec![rows, cols],
            data: MatData::Numeric(NumericData::F64(data)),
        }
    }

    /// A rows x cols int8 matrix from column-major data.
    pub fn matrix_i8(rows: usize, cols: usize, data: Vec<i8>) -> Self {
        MatArray {
            dims: vec![rows, cols],
            data: MatData::Numeric(NumericData::I8(data)),
        }
    }

    /// The 0x0 double `[]`.
    pub fn empty() -> Self {
        MatArray {
            dims: vec![0, 0],
            data: MatData::Numeric(NumericData::F64(Vec::new())),
        }
    }

    /// A 1xN char row (N in UTF-16 code units).
    pub fn string(s: &str) -> Self {
        let units: Vec<u16> = s.encode_utf16().collect();
        MatArray {
            dims: vec![1, units.len()],
            data: MatData::Char(units),
        }
    }

    /// A 1xN cell row.
    pub fn cell_row(items: Vec<MatArray>) -> Self {
        MatArray {
            dims: vec![1, items.len()],
            data: MatData::Cell(items),
        }
    }

    /// A 1x1 struct with the given fields, in order.
    pub fn struct_scalar(fields: Vec<(String, MatArray)>) -> Self {
        let (field_names, values) = fields.into_iter().unzip();
        MatArray {
            dims: vec![1, 1],
            data: MatData::Struct(StructArray {
                class_name: None,
                field_names,
                values,
            }),
        }
    }

    /// A 1x1 old-style object of class `class_name` with the given fields.
    pub fn object_scalar(class_name: &str, fields: Vec<(String, MatArray)>) -> Self {
        let mut a = Self::struct_scalar(fields);
        if let MatData::Struct(s) = &mut a.data {
            s.class_name = Some(class_name.to_string());
        }
        a
    }

    /// Product of the dims (`None` on overflow, which only a malformed value can have).
    pub fn numel(&self) -> Option<usize> {
        self.dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    pub fn class(&self) -> MatClass {
        match &self.data {
            MatData::Numeric(n) => n.class(),
            MatData::Logical(_) => MatClass::Logical,
            MatData::Char(_) => MatClass::Char,
            MatData::Cell(_) => MatClass::Cell,
            MatData::Struct(s) if s.class_name.is_some() => MatClass::Object,
            MatData::Struct(_) => MatClass::Struct,
            MatData::Unsupported { class, .. } => MatClass::Unsupported(*class),
        }
    }

    /// A checked view of this array, for reading code; `label` names it in errors.
    pub fn view<'a>(&'a self, file: &'a Path, label: &str) -> MatRef<'a> {
        MatRef {
            file,
            path: label.to_string(),
            node: Node::Array(self),
        }
    }
}

/// Describes an array for messages: `1x5 cell`, `48x3 int8`, `1x1 object of class pepmodule`.
pub(crate) fn describe(dims: &[usize], data: &MatData) -> String {
    let d = dims
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x");
    match data {
        MatData::Numeric(n) => format!("a {d} {} array", n.class()),
        MatData::Logical(_) => format!("a {d} logical array"),
        MatData::Char(_) => format!("a {d} char array"),
        MatData::Cell(_) => format!("a {d} cell array"),
        MatData::Struct(StructArray {
            class_name: Some(c),
            ..
        }) => {
            format!("a {d} object of class {c}")
        }
        MatData::Struct(_) => format!("a {d} struct"),
        MatData::Unsupported { what, .. } => format!("a {d} {what} (not read by this reader)"),
    }
}

impl MatFile {
    pub fn variable_names(&self) -> Vec<String> {
        self.variables.iter().map(|v| v.name.clone()).collect()
    }

    /// The variable `name`, or an error that lists the variables the file has.
    pub fn variable(&self, name: &str) -> Result<MatRef<'_>, MatError> {
        match self.variables.iter().find(|v| v.name == name) {
            Some(v) => Ok(MatRef {
                file: &self.path,
                path: name.to_string(),
                node: Node::Array(&v.value),
            }),
            None => Err(MatError::NoSuchVariable {
                path: self.path.clone(),
                name: name.to_string(),
                available: self.variable_names(),
            }),
        }
    }
}

const ONE_BY_ONE: &[usize] = &[1, 1];

#[derive(Debug, Clone, Copy)]
enum Node<'a> {
    Array(&'a MatArray),
    /// Element `index` of a struct array, seen as a 1x1 struct.
    StructElement {
        array: &'a StructArray,
        index: usize,
    },
}

/// A checked, path-aware view of a value inside a [`MatFile`].
#[derive(Debug, Clone)]
pub struct MatRef<'a> {
    file: &'a Path,
    path: String,
    node: Node<'a>,
}

impl<'a> MatRef<'a> {
    /// MATLAB-style path of this node, e.g. `pepANA.listOfResults{2}.repeat{1}`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn file(&self) -> &'a Path {
        self.file
    }

    pub fn dims(&self) -> &'a [usize] {
        match self.node {
            Node::Array(a) => &a.dims,
            Node::StructElement { .. } => ONE_BY_ONE,
        }
    }

    /// Number of elements (product of the dims).
    pub fn numel(&self) -> usize {
        self.dims()
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .unwrap_or(usize::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.numel() == 0
    }

    pub fn class(&self) -> MatClass {
        match self.node {
            Node::Array(a) => a.class(),
            Node::StructElement { array, .. } if array.class_name.is_some() => MatClass::Object,
            Node::StructElement { .. } => MatClass::Struct,
        }
    }

    /// The array behind this view (`None` for one element of a struct array).
    pub fn array(&self) -> Option<&'a MatArray> {
        match self.node {
            Node::Array(a) => Some(a),
            Node::StructElement { .. } => None,
        }
    }

    /// `a 1x5 cell array`, `a 48x3 int8 array`, ...
    pub fn describe(&self) -> String {
        match self.node {
            Node::Array(a) => describe(&a.dims, &a.data),
            Node::StructElement { array, .. } => match &array.class_name {
                Some(c) => format!("a 1x1 object of class {c}"),
                None => "a 1x1 struct".to_string(),
            },
        }
    }

    fn wrong(&self, expected: &str) -> MatError {
        MatError::WrongType {
            path: self.file.to_path_buf(),
            node: self.path.clone(),
            expected: expected.to_string(),
            found: self.describe(),
        }
    }

    fn child(&self, path: String, node: Node<'a>) -> MatRef<'a> {
        MatRef {
            file: self.file,
            path,
            node,
        }
    }

    /// The struct (or object) behind this node and the element index, when it is a
    /// single struct element.
    fn single_struct(&self) -> Option<(&'a StructArray, usize)> {
        match self.node {
            Node::StructElement { array, index } => Some((array, index)),
            Node::Array(MatArray {
                dims,
                data: MatData::Struct(s),
            }) if dims.iter().all(|&d| d == 1) => Some((s, 0)),
            Node::Array(_) => None,
        }
    }

    /// Class name of an old-style object (`None` for plain structs and other values).
    pub fn object_class(&self) -> Option<&'a str> {
        match self.node {
            Node::StructElement { array, .. } => array.class_name.as_deref(),
            Node::Array(MatArray {
                data: MatData::Struct(s),
                ..
            }) => s.class_name.as_deref(),
            Node::Array(_) => None,
        }
    }

    /// Field names of a struct or object.
    pub fn field_names(&self) -> Result<&'a [String], MatError> {
        match self.node {
            Node::StructElement { array, .. } => Ok(&array.field_names),
            Node::Array(MatArray {
                data: MatData::Struct(s),
                ..
            }) => Ok(&s.field_names),
            Node::Array(_) => Err(self.wrong("a struct or object")),
        }
    }

    pub fn has_field(&self, name: &str) -> bool {
        self.field_names()
            .map(|f| f.iter().any(|n| n == name))
            .unwrap_or(false)
    }

    /// Field `name` of a 1x1 struct or object (or of one element of a struct array).
    pub fn field(&self, name: &str) -> Result<MatRef<'a>, MatError> {
        let (s, index) = self
            .single_struct()
            .ok_or_else(|| self.wrong("a 1x1 struct or object"))?;
        let nf = s.field_names.len();
        let f = s
            .field_names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| MatError::NoSuchField {
                path: self.file.to_path_buf(),
                node: self.path.clone(),
                field: name.to_string(),
                available: s.field_names.clone(),
            })?;
        let value = s
            .values
            .get(index * nf + f)
            .ok_or_else(|| self.wrong("a complete struct"))?;
        Ok(self.child(format!("{}.{}", self.path, name), Node::Array(value)))
    }

    /// Field `name` if the struct has it, `None` if not; an error if this is no struct.
    pub fn field_opt(&self, name: &str) -> Result<Option<MatRef<'a>>, MatError> {
        if self.single_struct().is_none() {
            return Err(self.wrong("a 1x1 struct or object"));
        }
        if self.has_field(name) {
            self.field(name).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The elements of a cell array, column-major.
    pub fn as_cell(&self) -> Result<Vec<MatRef<'a>>, MatError> {
        match self.node {
            Node::Array(MatArray {
                data: MatData::Cell(items),
                ..
            }) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, a)| self.child(format!("{}{{{}}}", self.path, i + 1), Node::Array(a)))
                .collect()),
            _ => Err(self.wrong("a cell array")),
        }
    }

    /// The elements of a cell array, or of a struct/object array seen as 1x1 structs.
    /// This accepts both ways a list of records is stored: a 1xN cell of structs, or a
    /// 1xN struct array (what a 1x1 cell holding a struct looks like once squeezed).
    pub fn as_list(&self) -> Result<Vec<MatRef<'a>>, MatError> {
        match self.node {
            Node::Array(MatArray {
                data: MatData::Cell(_),
                ..
            }) => self.as_cell(),
            Node::Array(MatArray {
                data: MatData::Struct(s),
                ..
            }) => {
                let n = self.numel();
                let nf = s.field_names.len();
                // Only a struct array whose values are all present can be listed; this
                // also bounds the list by the data actually read.
                if nf == 0 || n.checked_mul(nf) != Some(s.values.len()) {
                    return Err(self.wrong("a struct array with fields"));
                }
                Ok((0..n)
                    .map(|i| {
                        let path = if n == 1 {
                            self.path.clone()
                        } else {
                            format!("{}({})", self.path, i + 1)
                        };
                        self.child(path, Node::StructElement { array: s, index: i })
                    })
                    .collect())
            }
            Node::StructElement { .. } => Ok(vec![self.clone()]),
            Node::Array(_) => Err(self.wrong("a cell array or a struct array")),
        }
    }

    /// All values of a numeric or logical array as `f64`, column-major.
    pub fn as_f64_vec(&self) -> Result<Vec<f64>, MatError> {
        match self.node {
            Node::Array(MatArray {
                data: MatData::Numeric(n),
                ..
            }) => Ok(n.to_f64_vec()),
            Node::Array(MatArray {
                data: MatData::Logical(b),
                ..
            }) => Ok(b.iter().map(|&x| if x { 1.0 } else { 0.0 }).collect()),
            _ => Err(self.wrong("a numeric array")),
        }
    }

    /// The single value of a 1x1 numeric or logical array.
    pub fn as_f64_scalar(&self) -> Result<f64, MatError> {
        let v = self
            .as_f64_vec()
            .map_err(|_| self.wrong("a numeric scalar"))?;
        match v.as_slice() {
            [x] => Ok(*x),
            _ => Err(self.wrong("a numeric scalar")),
        }
    }

    /// An int8 matrix as (rows, cols, column-major data). Trailing singleton dims are
    /// allowed; anything with more than two non-trivial dims is an error.
    pub fn as_i8_matrix(&self) -> Result<(usize, usize, &'a [i8]), MatError> {
        match self.node {
            Node::Array(MatArray {
                dims,
                data: MatData::Numeric(NumericData::I8(v)),
            }) => {
                let rows = dims.first().copied().unwrap_or(1);
                let cols = dims.get(1).copied().unwrap_or(1);
                if dims.iter().skip(2).any(|&d| d != 1) {
                    return Err(self.wrong("a 2-D int8 matrix"));
                }
                Ok((rows, cols, v))
            }
            _ => Err(self.wrong("an int8 matrix")),
        }
    }

    /// A char row vector (1xN, Nx1 or empty) as a `String`.
    pub fn as_string(&self) -> Result<String, MatError> {
        match self.node {
            Node::Array(MatArray {
                dims,
                data: MatData::Char(units),
            }) => {
                let non_singleton = dims.iter().filter(|&&d| d != 1).count();
                if non_singleton > 1 && !units.is_empty() {
                    return Err(self.wrong("a char row vector"));
                }
                String::from_utf16(units).map_err(|_| self.wrong("valid UTF-16 text"))
            }
            _ => Err(self.wrong("a char array")),
        }
    }
}
