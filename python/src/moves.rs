//! `Moves` and `MovedRange`: what moved between two rings, as data.

use crate::errors::{invalid, IntoPyResult};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyInt, PyIterator, PyList, PyString};
use registry_core::{validate, MovedRange, Moves};
use std::hash::{Hash, Hasher};

/// Reads a key position: `Some` for an int in `0..=2**32-1`, `None` for
/// an int outside it; anything else is invalid.
fn position_from_py(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Option<u32>> {
    if !value.is_instance_of::<PyInt>() {
        let ty = value.get_type().name()?;
        return Err(invalid(py, format!("a key position must be an int, not {ty}")));
    }
    Ok(value.extract::<u32>().ok())
}

/// Python's repr of an optional id: `'a'` or `None`.
fn repr_id(py: Python<'_>, id: Option<&str>) -> PyResult<String> {
    match id {
        Some(id) => Ok(PyString::new(py, id).repr()?.to_string()),
        None => Ok("None".to_string()),
    }
}

/// Key positions `first..=last` (inclusive) whose owner changed from
/// `from_` to `to`; an owner is `None` when that ring had no serving
/// member. Immutable; equal when all four are.
#[pyclass(frozen, eq, hash, module = "registry_client", name = "MovedRange")]
#[derive(PartialEq)]
pub struct PyMovedRange(MovedRange);

impl Hash for PyMovedRange {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let r = &self.0;
        (r.first, r.last, &r.from, &r.to).hash(state);
    }
}

#[pymethods]
impl PyMovedRange {
    /// First key position of the range.
    #[getter]
    fn first(&self) -> u32 {
        self.0.first
    }

    /// Last key position of the range (inclusive).
    #[getter]
    fn last(&self) -> u32 {
        self.0.last
    }

    /// Owner id before the change (`None`: the old ring had no serving
    /// member).
    #[getter(from_)]
    fn from(&self) -> Option<&str> {
        self.0.from.as_deref()
    }

    /// Owner id after the change (`None`: the new ring has no serving
    /// member).
    #[getter]
    fn to(&self) -> Option<&str> {
        self.0.to.as_deref()
    }

    /// Number of key positions in the range (`last - first + 1`).
    #[getter]
    fn positions(&self) -> u64 {
        self.0.positions()
    }

    fn __contains__(&self, py: Python<'_>, position: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(position_from_py(py, position)?.is_some_and(|p| self.0.contains(p)))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let r = &self.0;
        Ok(format!(
            "MovedRange(first={}, last={}, from_={}, to={})",
            r.first,
            r.last,
            repr_id(py, r.from.as_deref())?,
            repr_id(py, r.to.as_deref())?
        ))
    }
}

/// Wraps core ranges into a Python list of `MovedRange`.
fn range_list<'a, 'py>(
    py: Python<'py>,
    ranges: impl IntoIterator<Item = &'a MovedRange>,
) -> PyResult<Bound<'py, PyList>> {
    let items = ranges
        .into_iter()
        .map(|r| Bound::new(py, PyMovedRange(r.clone())))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

/// What moved between an older and a newer ring (`Ring.moves_to`): the
/// sorted, non-overlapping ranges of key positions whose owner changed,
/// with the old and new owner. Immutable; iterating gives the ranges.
#[pyclass(frozen, module = "registry_client", name = "Moves")]
pub struct PyMoves {
    moves: Moves,
}

impl PyMoves {
    /// Wraps the core's answer.
    pub(crate) fn new(moves: Moves) -> Self {
        PyMoves { moves }
    }
}

#[pymethods]
impl PyMoves {
    /// The moved ranges, sorted by position (a new list on every access).
    #[getter]
    fn ranges<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        range_list(py, self.moves.ranges())
    }

    /// The range holding key position `position` (an int in
    /// `0..=2**32-1`), or `None` when the key there kept its owner.
    fn at(&self, py: Python<'_>, position: &Bound<'_, PyAny>) -> PyResult<Option<PyMovedRange>> {
        let p = position_from_py(py, position)?.ok_or_else(|| {
            invalid(
                py,
                format!("position {position} is out of range 0..={}", u32::MAX),
            )
        })?;
        Ok(self.moves.at(p).cloned().map(PyMovedRange))
    }

    /// Did `key` move: its range (from whom to whom), or `None` when its
    /// owner stayed the same. `InvalidArgumentError` for an empty key.
    fn of_key(&self, py: Python<'_>, key: PyBackedStr) -> PyResult<Option<PyMovedRange>> {
        let range = self.moves.of_key(&key).py_err(py)?;
        Ok(range.cloned().map(PyMovedRange))
    }

    /// The ranges member `id` owned before and no longer owns: the keys
    /// it hands off (each range says to whom).
    fn lost_by<'py>(&self, py: Python<'py>, id: PyBackedStr) -> PyResult<Bound<'py, PyList>> {
        validate::id(&id).py_err(py)?;
        range_list(py, self.moves.lost_by(&id))
    }

    /// The ranges member `id` owns now and did not before: the keys it
    /// takes over (each range says from whom).
    fn gained_by<'py>(&self, py: Python<'py>, id: PyBackedStr) -> PyResult<Bound<'py, PyList>> {
        validate::id(&id).py_err(py)?;
        range_list(py, self.moves.gained_by(&id))
    }

    /// Fraction of the key space that changed owner, from 0.0 to 1.0.
    #[getter]
    fn fraction(&self) -> f64 {
        self.moves.fraction()
    }

    /// Number of key positions that changed owner, in all (at most 2**32).
    #[getter]
    fn positions(&self) -> u64 {
        self.moves.ranges().iter().map(MovedRange::positions).sum()
    }

    fn __len__(&self) -> usize {
        self.moves.ranges().len()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyIterator>> {
        self.ranges(py)?.try_iter()
    }

    fn __repr__(&self) -> String {
        format!(
            "Moves(<{} ranges, {:.4} of the keys>)",
            self.moves.ranges().len(),
            self.moves.fraction()
        )
    }
}
