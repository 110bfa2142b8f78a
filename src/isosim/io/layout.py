"""Named axes for every results.h5: HDF5 dimension scales that xarray (h5netcdf) reads as they
are (docs/outputs.md).

Writers mark each dataset with the names of its axes (:func:`mark`, or the ``dims`` argument
of :func:`isosim.models.recording.put`), in the one order of every results file: ``member``
first, then ``time`` (or ``profile``), then the rest. When the file is complete, :func:`label`
(rank 0, serial, before the seal) turns the marks into dimension scales: in every group, a
dataset named like an axis (``isotope``, ``phase``, ``member``, ...) becomes that axis's
coordinate variable; an axis without one gets an index ``0 .. n-1``; the group attribute
``coordinates`` lists the other coordinates (``tau``, ``t_Myr``, ``T_C``, the varied
parameters, ...), which xarray shows as coordinates. The marks themselves are removed.
Only metadata changes: no value is rewritten.
"""

import h5py
import numpy as np

#: temporary attribute holding a dataset's axis names until :func:`label` runs
MARK = "_isosim_dims"


def mark(ds, dims):
    """Note the axis names ``dims`` of h5py dataset ``ds`` (one per axis)."""
    dims = [str(d) for d in dims]
    if len(dims) != ds.ndim:
        raise ValueError(f"{ds.name}: {len(dims)} axis names {dims} for {ds.ndim} axes")
    if dims:
        ds.attrs[MARK] = dims
    return ds


def mark_attrs(dims):
    """The attribute that marks a dataset written elsewhere (e.g. a collective slab)."""
    return {MARK: [str(d) for d in dims]}


def labels(group, name, values, doc):
    """A coordinate variable of text labels (``isotope``, ``phase``, ...) in ``group``."""
    ds = group.create_dataset(name, data=np.asarray([str(v) for v in values], dtype=object),
                              dtype=h5py.string_dtype())
    ds.attrs["units"] = ""
    ds.attrs["description"] = doc
    return mark(ds, [name])


def coordinates(group, *names):
    """List datasets of ``group`` as (non-dimension) coordinates for xarray."""
    old = str(group.attrs.get("coordinates", "")).split()
    group.attrs["coordinates"] = " ".join(dict.fromkeys(old + [str(n) for n in names]))


def label(h5):
    """Attach dimension scales to every marked dataset of the open file ``h5`` (r+). Local."""
    groups = []
    h5.visititems(lambda name, obj: groups.append(obj) if isinstance(obj, h5py.Group) else None)
    for g in [h5] + groups:
        _label_group(g)


def _label_group(g):
    marked = {name: list(ds.attrs[MARK]) for name, ds in g.items()
              if isinstance(ds, h5py.Dataset) and MARK in ds.attrs}
    for name, ds in g.items():         # not marked by its writer: axes named after the dataset
        if (isinstance(ds, h5py.Dataset) and name not in marked and ds.ndim
                and ds.attrs.get("CLASS") != b"DIMENSION_SCALE" and not all(len(d) for d in ds.dims)):
            marked[name] = _fallback(name, ds)
    sizes = {}
    for name, dims in marked.items():
        for d, n in zip(dims, g[name].shape):
            if sizes.setdefault(d, n) != n:
                raise ValueError(f"{g.name}/{name}: axis {d} has length {n}, elsewhere {sizes[d]}")
    for d, n in sizes.items():
        if d not in g:
            ds = g.create_dataset(d, data=np.arange(n, dtype=np.int64))
            ds.attrs["units"] = "1"
            ds.attrs["description"] = f"{d} index"
        elif g[d].shape != (n,):
            raise ValueError(f"{g.name}/{d}: coordinate of shape {g[d].shape}, axis length {n}")
        if g[d].attrs.get("CLASS") != b"DIMENSION_SCALE":
            g[d].make_scale(d)
    for name, dims in marked.items():
        ds = g[name]
        for i, d in enumerate(dims):
            if name != d:
                ds.dims[i].attach_scale(g[d])
        if MARK in ds.attrs:
            del ds.attrs[MARK]
    if "coordinates" in g.attrs:
        present = [c for c in str(g.attrs["coordinates"]).split() if c in g and c not in sizes]
        if present:
            g.attrs["coordinates"] = " ".join(present)
        else:
            del g.attrs["coordinates"]


def _fallback(name, ds):
    """Axis names of a dataset its writer did not mark: ``NAME_row``, ``NAME_column`` for a
    table (attribute ``columns``), else ``NAME_dim0``, ``NAME_dim1``, ..."""
    cols = ds.attrs.get("columns")
    if ds.ndim == 2 and cols is not None and len(cols) == ds.shape[1]:
        return [f"{name}_row", f"{name}_column"]
    return [f"{name}_dim{i}" for i in range(ds.ndim)]


def order_ok(dims):
    """Whether axis names follow the documented order: ``member`` first if present, then
    ``time`` or ``profile`` (right after ``member``, or first)."""
    dims = list(dims)
    if "member" in dims and dims[0] != "member":
        return False
    rest = dims[1:] if dims[:1] == ["member"] else dims
    for t in ("time", "profile"):
        if t in rest and rest[0] != t:
            return False
    return True


def label_ensemble(h5, varied):
    """Name the axes of an ensemble's results.h5 (sweep, slice, merge, streamed sweep) and
    label it (:func:`label`): every dataset of ``members`` (and ``members/params``, ``slice``)
    is [member], every one of ``series`` [member, time] (``profiles``, if kept, are marked by
    their writer); the varied deck keys ``varied`` become coordinates of ``members``, ``series``
    and ``profiles`` (copies of ``members/params/KEY``); ``tau`` (and
    ``T_C``, ``t_Myr`` where recorded) coordinates of ``series``. Local (rank 0)."""
    axes = {"members": ["member"], "slice": ["member"], "series": ["member", "time"]}
    for top, dims in axes.items():
        if top not in h5:
            continue
        found = []
        h5[top].visititems(lambda n, o: found.append(o) if isinstance(o, h5py.Dataset) else None)
        for ds in found:
            mark(ds, dims[:ds.ndim] if ds.ndim <= len(dims) else dims + [f"axis{i}" for i in range(len(dims), ds.ndim)])
    for top in ("members", "series", "profiles"):
        if top not in h5 or "members/params" not in h5:
            continue
        names = []
        for k in varied:
            src, name = f"members/params/{k}", str(k).replace("/", "_")
            if src in h5 and name not in h5[top]:
                h5.copy(h5[src], h5[top], name=name)
                mark(h5[top][name], ["member"])
                names.append(name)
        coordinates(h5[top], *names)
    if "series" in h5:
        coordinates(h5["series"], *[k for k in ("tau", "t_Myr", "T_C") if k in h5["series"]])
    if "slice/member_index" in h5:
        h5["slice/member_index"].attrs.update(units="1", description="index of each member in the whole sweep [member]")
        coordinates(h5["slice"], "member_index")
    label(h5)
