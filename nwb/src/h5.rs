//! The few HDF5 shapes NWB is made of, over `hdf5-metno`: typed groups and datasets with
//! their `neurodata_type`, `namespace` and `object_id` attributes, string attributes,
//! object references and the columns of a `DynamicTable`.

use std::str::FromStr;

use hdf5::types::{H5Type, VarLenUnicode};
use hdf5::{Dataset, Group, Location, ObjectReference1};
use ndarray::{ArrayView1, ArrayView2};

pub type H5Result<T> = hdf5::Result<T>;

/// The core namespace of NWB and the namespace of its tables.
pub const CORE: &str = "core";
pub const HDMF: &str = "hdmf-common";

/// Compression of the large datasets (gzip level 4 with byte shuffling, chunks of at
/// most `CHUNK` rows): spike times, waveforms and frame lists shrink 2-4x.
const DEFLATE: u8 = 4;
const CHUNK: usize = 65_536;

pub fn vlu(s: &str) -> VarLenUnicode {
    // Only fails on an interior NUL byte, which the strings written here never hold.
    VarLenUnicode::from_str(&s.replace('\0', " ")).unwrap_or_default()
}

/// Object ids: NWB wants a UUID on every typed object; a v5 UUID of the file's identifier
/// and the object's path keeps the same input giving the same bytes.
pub struct Ids {
    namespace: uuid::Uuid,
}

impl Ids {
    pub fn new(identifier: &str) -> Ids {
        Ids {
            namespace: uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, identifier.as_bytes()),
        }
    }

    pub fn of(&self, path: &str) -> String {
        uuid::Uuid::new_v5(&self.namespace, path.as_bytes()).to_string()
    }
}

pub fn attr_str(loc: &Location, name: &str, value: &str) -> H5Result<()> {
    loc.new_attr::<VarLenUnicode>()
        .shape(())
        .create(name)?
        .write_scalar(&vlu(value))
}

pub fn attr_strs(loc: &Location, name: &str, values: &[&str]) -> H5Result<()> {
    let v: Vec<VarLenUnicode> = values.iter().map(|s| vlu(s)).collect();
    loc.new_attr_builder()
        .with_data(ArrayView1::from(&v[..]))
        .create(name)?;
    Ok(())
}

pub fn attr_f64(loc: &Location, name: &str, value: f64) -> H5Result<()> {
    loc.new_attr::<f64>()
        .shape(())
        .create(name)?
        .write_scalar(&value)
}

pub fn attr_ref(loc: &Location, name: &str, target: &ObjectReference1) -> H5Result<()> {
    loc.new_attr::<ObjectReference1>()
        .shape(())
        .create(name)?
        .write_scalar(target)
}

/// Marks `loc` as an instance of `neurodata_type` in `namespace`, with its object id.
pub fn typed(loc: &Location, ids: &Ids, namespace: &str, neurodata_type: &str) -> H5Result<()> {
    attr_str(loc, "namespace", namespace)?;
    attr_str(loc, "neurodata_type", neurodata_type)?;
    attr_str(loc, "object_id", &ids.of(&loc.name()))
}

pub fn typed_group(
    parent: &Group,
    name: &str,
    ids: &Ids,
    namespace: &str,
    neurodata_type: &str,
) -> H5Result<Group> {
    let g = parent.create_group(name)?;
    typed(&g, ids, namespace, neurodata_type)?;
    Ok(g)
}

pub fn scalar_str(parent: &Group, name: &str, value: &str) -> H5Result<Dataset> {
    let ds = parent
        .new_dataset::<VarLenUnicode>()
        .shape(())
        .create(name)?;
    ds.write_scalar(&vlu(value))?;
    Ok(ds)
}

pub fn strings(parent: &Group, name: &str, values: &[String]) -> H5Result<Dataset> {
    let v: Vec<VarLenUnicode> = values.iter().map(|s| vlu(s)).collect();
    column(parent, name, &v)
}

/// A 1-D dataset, compressed in chunks when it is large.
pub fn column<T: H5Type>(parent: &Group, name: &str, values: &[T]) -> H5Result<Dataset> {
    let view = ArrayView1::from(values);
    if values.len() > 1024 {
        parent
            .new_dataset_builder()
            .with_data(view)
            .chunk(values.len().min(CHUNK))
            .shuffle()
            .deflate(DEFLATE)
            .create(name)
    } else {
        parent.new_dataset_builder().with_data(view).create(name)
    }
}

/// A 2-D dataset of `rows` x `cols`, row-major, compressed in chunks of rows.
pub fn matrix<T: H5Type>(
    parent: &Group,
    name: &str,
    values: &[T],
    cols: usize,
) -> H5Result<Dataset> {
    let rows = values.len().checked_div(cols).unwrap_or(0);
    let view = ArrayView2::from_shape((rows, cols), values)
        .map_err(|e| hdf5::Error::from(e.to_string().as_str()))?;
    if rows > 0 {
        let chunk_rows = rows.min((CHUNK / cols.max(1)).max(1));
        parent
            .new_dataset_builder()
            .with_data(view)
            .chunk((chunk_rows, cols.max(1)))
            .shuffle()
            .deflate(DEFLATE)
            .create(name)
    } else {
        parent.new_dataset::<T>().shape((0, cols)).create(name)
    }
}

/// One column of a `DynamicTable`: `VectorData` with its description.
pub fn vector_data<T: H5Type>(
    table: &Group,
    ids: &Ids,
    name: &str,
    description: &str,
    values: &[T],
) -> H5Result<Dataset> {
    let ds = column(table, name, values)?;
    attr_str(&ds, "description", description)?;
    typed(&ds, ids, HDMF, "VectorData")?;
    Ok(ds)
}

pub fn vector_strings(
    table: &Group,
    ids: &Ids,
    name: &str,
    description: &str,
    values: &[String],
) -> H5Result<Dataset> {
    let ds = strings(table, name, values)?;
    attr_str(&ds, "description", description)?;
    typed(&ds, ids, HDMF, "VectorData")?;
    Ok(ds)
}

/// The `VectorIndex` of a ragged column: `ends[i]` is one past the last element of row i.
pub fn vector_index(
    table: &Group,
    ids: &Ids,
    name: &str,
    target: &Dataset,
    ends: &[u64],
) -> H5Result<Dataset> {
    let ds = column(table, name, ends)?;
    attr_str(
        &ds,
        "description",
        &format!("Index for VectorData '{}'", leaf(&target.name())),
    )?;
    typed(&ds, ids, HDMF, "VectorIndex")?;
    let r = table
        .file()?
        .reference::<ObjectReference1>(&target.name())?;
    attr_ref(&ds, "target", &r)?;
    Ok(ds)
}

/// The `id` column of a table: 0..n.
pub fn element_ids(table: &Group, ids: &Ids, n: usize) -> H5Result<()> {
    let v: Vec<i64> = (0..n as i64).collect();
    let ds = column(table, "id", &v)?;
    typed(&ds, ids, HDMF, "ElementIdentifiers")
}

/// `colnames` and `description` of a `DynamicTable`.
pub fn table_attrs(table: &Group, description: &str, colnames: &[&str]) -> H5Result<()> {
    attr_str(table, "description", description)?;
    attr_strs(table, "colnames", colnames)
}

pub fn leaf(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

// --- reading -------------------------------------------------------------------------

pub fn read_attr_str(loc: &Location, name: &str) -> H5Result<String> {
    Ok(loc
        .attr(name)?
        .read_scalar::<VarLenUnicode>()?
        .as_str()
        .to_string())
}

pub fn read_str(group: &Group, name: &str) -> H5Result<String> {
    Ok(group
        .dataset(name)?
        .read_scalar::<VarLenUnicode>()?
        .as_str()
        .to_string())
}

pub fn read_strings(group: &Group, name: &str) -> H5Result<Vec<String>> {
    Ok(group
        .dataset(name)?
        .read_raw::<VarLenUnicode>()?
        .into_iter()
        .map(|s| s.as_str().to_string())
        .collect())
}

pub fn read_vec<T: H5Type>(group: &Group, name: &str) -> H5Result<Vec<T>> {
    group.dataset(name)?.read_raw::<T>()
}
