"""A restricted unpickler for dataset files: numpy arrays and plain containers, nothing else.

``pickle.load`` on an untrusted file runs whatever callable the file names. This unpickler
resolves only the handful of globals numpy needs to rebuild arrays and scalars; any other
global is refused before it is looked up, so nothing it names is imported or called.
"""

import pickle
from typing import Any, BinaryIO

from .exceptions import UnsafePickleError

_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    # Protocol 2 pickles carry bytes through codecs.encode(str, "latin1"): pure, no side effects.
    ("_codecs", "encode"),
}
# dtype classes (numpy >= 1.25 pickles e.g. numpy.dtypes.UInt8DType for some dtypes).
_ALLOWED_DTYPE_MODULES = {"numpy.dtypes"}


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS or (
            module in _ALLOWED_DTYPE_MODULES and name.endswith("DType")
        ):
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refused to unpickle global {module}.{name}: only numpy arrays, lists, dicts, "
            "ints, floats and strings are allowed in a dataset pickle"
        )


def safe_load(fh: BinaryIO, *, source: str = "pickle") -> Any:
    """Load a pickle allowing only numpy arrays and plain containers.

    Raises:
        UnsafePickleError: the pickle names any other global (nothing is executed).
        DatasetImportError: the file is not a readable pickle.
    """
    from .exceptions import DatasetImportError

    try:
        return RestrictedUnpickler(fh).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{source}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DatasetImportError(f"{source}: not a readable pickle ({exc})") from None
