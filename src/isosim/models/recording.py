"""What every model's recorder shares: output times still due, recordings round-tripped through
checkpoints, and datasets written with units."""

import numpy as np


class Recorder:
    """Base of the recorders. Subclasses set ``times`` (ascending output times on the TS
    clock), ``series`` and ``profiles`` (dicts of lists, ``series["tau"]`` the times recorded)."""

    def pending_times(self):
        """Output times still to be recorded, ascending."""
        last = self.series["tau"][-1] if self.series["tau"] else -1.0
        return [t for t in self.times if t > last]

    def state(self):
        """Recordings as arrays, for a checkpoint."""
        out = {f"series_{k}": np.asarray(v) for k, v in self.series.items()}
        out.update({f"profiles_{k}": np.asarray(v) for k, v in self.profiles.items()})
        return out

    def load_state(self, arrays):
        """Recordings from a checkpoint (see :meth:`state`)."""
        for k in self.series:
            self.series[k] = list(arrays[f"series_{k}"])
        for k in self.profiles:
            self.profiles[k] = list(arrays.get(f"profiles_{k}", []))


def put(group, name, data, units, doc):
    """Create dataset ``name`` in an h5py group with ``units`` and ``description`` attributes."""
    ds = group.create_dataset(name, data=np.asarray(data))
    ds.attrs["units"] = units
    ds.attrs["description"] = doc
    return ds
