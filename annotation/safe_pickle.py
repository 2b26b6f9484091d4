"""A restricted, budgeted unpickler for dataset files: numpy arrays and plain containers only.

``pickle.load`` on an untrusted file runs whatever callable the file names. This unpickler
resolves only the handful of globals numpy needs to rebuild arrays and scalars; any other
global is refused before it is looked up, so nothing it names is imported or called.

A small pickle can still ask for a lot of memory: an array allocated from a shape alone, a
length prefix far past the end of the file, millions of one-byte opcodes each building an
object, or one large array referenced thousands of times (the memo's ``GET``/``BINGET`` and
``DUP`` cost a few bytes each). So every opcode is counted, every allocation is checked against
the file and IMPORT_MAX_BYTES before it happens, and the loaded value is then measured as the
tree its consumers will expand it to: each reference to a shared array counts its full size.
"""

from __future__ import annotations

import codecs
import io
import math
import pickle
import struct
from typing import Any, BinaryIO

import numpy as np

from .exceptions import DatasetImportError, UnsafePickleError
from .import_guard import OBJECT_BYTES, limit, object_limit

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
# Opcodes a dataset pickle never needs: each of the first can build objects of any class, and
# a set costs far more memory than the one byte that builds it.
_REFUSED_OPCODES = {
    pickle.INST,
    pickle.OBJ,
    pickle.NEWOBJ,
    pickle.NEWOBJ_EX,
    pickle.EXT1,
    pickle.EXT2,
    pickle.EXT4,
    pickle.PERSID,
    pickle.BINPERSID,
    pickle.EMPTY_SET,
    pickle.ADDITEMS,
    pickle.FROZENSET,
}


class PickleBudgetError(DatasetImportError):
    """A pickle would take more memory or objects than the import limits allow."""


def _refuse_size(source: str, what: str, size: int) -> None:
    raise PickleBudgetError(
        f"{source}: the pickle {what} {size} bytes, over the limit of "
        f"{limit('IMPORT_MAX_BYTES')} bytes (IMPORT_MAX_BYTES); refused before loading it"
    )


class _Budget:
    """Bytes the unpickler may still allocate beyond what it reads, and opcodes it may run."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.bytes_left = limit("IMPORT_MAX_BYTES")
        self.ops_left = object_limit()

    def take(self, size: int, what: str) -> None:
        if size > self.bytes_left:
            _refuse_size(self.source, what, size)
        self.bytes_left -= size


class _BoundedReader:
    """The file, read no further than its real end: a length prefix cannot reserve more."""

    def __init__(self, fh: Any, size: int) -> None:
        self.fh, self.left = fh, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.fh.read(n)
        self.left -= len(data)
        return data

    def readinto(self, buf: Any) -> int:
        view = memoryview(buf).cast("B")
        if len(view) > self.left:
            raise pickle.UnpicklingError("pickle data was truncated")
        got = self.fh.readinto(view)
        self.left -= got
        return got

    def readline(self) -> bytes:
        data = self.fh.readline(self.left)
        self.left -= len(data)
        return data


def _file_size(fh: BinaryIO) -> int:
    here = fh.tell()
    end = fh.seek(0, io.SEEK_END)
    fh.seek(here)
    return end - here


def _checked_shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise UnsafePickleError(f"refused an array shape {shape!r:.80}")
    return shape


class RestrictedUnpickler(pickle._Unpickler):  # the Python one: its opcodes can be counted
    """Rebuilds numpy arrays, scalars, dtypes and plain containers; refuses everything else."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, fh: BinaryIO, *, source: str = "pickle") -> None:
        self.budget = _Budget(source)
        size = _file_size(fh)
        if size > self.budget.bytes_left:
            _refuse_size(source, "file is", size)
        super().__init__(_BoundedReader(fh, size))
        # The allowed numpy functions, each wrapped to check what it would allocate first; a
        # REDUCE may call only these, np.dtype and numpy's DType classes.
        self._wrappers = {
            "_reconstruct": self._reconstruct,
            "scalar": self._scalar,
            "_frombuffer": self._frombuffer,
            "encode": self._encode,
        }
        self._real: dict[str, Any] = {}
        self._callables: dict[int, Any] = {id(f): f for f in self._wrappers.values()}
        self._callables[id(np.dtype)] = np.dtype

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS or (
            module in _ALLOWED_DTYPE_MODULES and name.endswith("DType")
        ):
            found = super().find_class(module, name)
            if name in self._wrappers:
                self._real[name] = found
                return self._wrappers[name]
            if module in _ALLOWED_DTYPE_MODULES:
                if not (isinstance(found, type) and issubclass(found, np.dtype)):
                    raise UnsafePickleError(f"refused to unpickle global {module}.{name}")
                self._callables[id(found)] = found
            return found
        raise UnsafePickleError(
            f"refused to unpickle global {module}.{name}: only numpy arrays, lists, dicts, "
            "ints, floats and strings are allowed in a dataset pickle"
        )

    def take_array(self, shape: Any, dtype: Any) -> None:
        """Count an array of ``shape`` and ``dtype`` against the budget before it exists."""
        shape = _checked_shape(shape)
        self.budget.take(math.prod(shape) * int(np.dtype(dtype).itemsize), "asks for an array of")

    def _reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        if subtype is not np.ndarray:
            raise UnsafePickleError(f"refused to rebuild an array of type {subtype!r:.80}")
        self.take_array(shape, dtype)
        return self._real["_reconstruct"](subtype, shape, dtype)

    def _scalar(self, dtype: Any, *args: Any) -> Any:
        self.budget.take(int(np.dtype(dtype).itemsize), "asks for a scalar of")
        return self._real["scalar"](dtype, *args)

    def _frombuffer(self, buf: Any, *args: Any) -> np.ndarray:
        if not isinstance(buf, bytes | bytearray | pickle.PickleBuffer):
            raise UnsafePickleError(f"refused an array buffer of type {type(buf).__name__}")
        # A view on bytes already read from the file: nothing new is allocated.
        return self._real["_frombuffer"](buf, *args)

    def _encode(self, obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        if encoding not in ("latin1", "latin-1") or not isinstance(obj, str):
            raise UnsafePickleError(f"refused codecs.encode(..., {encoding!r:.40})")
        return codecs.encode(obj, encoding, errors)


def _counted(op: Any) -> Any:
    def run(self: Any) -> None:
        self.budget.ops_left -= 1
        if self.budget.ops_left < 0:
            raise PickleBudgetError(
                f"{self.budget.source}: the pickle builds more than {object_limit()} objects "
                f"(one per {OBJECT_BYTES} bytes of IMPORT_MAX_BYTES); refused"
            )
        op(self)

    return run


def _load_reduce(self: Any) -> None:
    args = self.stack.pop()
    func = self.stack[-1]
    if self._callables.get(id(func)) is not func or not isinstance(args, tuple):
        raise UnsafePickleError(f"refused to call {func!r:.80} while unpickling")
    self.stack[-1] = func(*args)


def _load_build(self: Any) -> None:
    inst, state = self.stack[-2], self.stack[-1]
    # Only numpy objects take state; BUILD on anything else could set attributes on it.
    if not isinstance(inst, np.ndarray | np.dtype | np.generic):
        raise UnsafePickleError(f"refused to set the state of {type(inst).__name__}")
    if isinstance(inst, np.ndarray):
        # (version, shape, dtype, is_fortran, data): the array is reallocated to that shape.
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickleError("refused an array state that is not a 4- or 5-tuple")
        self.take_array(state[-4], state[-3])
    pickle._Unpickler.dispatch[pickle.BUILD[0]](self)


def _load_bytearray8(self: Any) -> None:
    (size,) = struct.unpack("<Q", self.read(8))
    # bytearray(size) is allocated before it is filled: count it first.
    self.budget.take(size, "declares a bytearray of")
    buf = bytearray(size)
    self.readinto(buf)
    self.append(buf)


def _refused(op: bytes) -> Any:
    def run(self: Any) -> None:
        raise UnsafePickleError(f"refused pickle opcode {op!r}: dataset pickles never need it")

    return run


RestrictedUnpickler.dispatch[pickle.REDUCE[0]] = _load_reduce
RestrictedUnpickler.dispatch[pickle.BUILD[0]] = _load_build
RestrictedUnpickler.dispatch[pickle.BYTEARRAY8[0]] = _load_bytearray8
for _op in _REFUSED_OPCODES:
    RestrictedUnpickler.dispatch[_op[0]] = _refused(_op)
RestrictedUnpickler.dispatch = {k: _counted(v) for k, v in RestrictedUnpickler.dispatch.items()}


def _children(obj: Any) -> Any:
    if isinstance(obj, list | tuple):
        return obj
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject:
        return list(obj.ravel(order="K"))
    return ()


def _own_bytes(obj: Any) -> int:
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, bytes | bytearray | str):
        return len(obj)
    return 0


def expanded_size(root: Any, source: str) -> tuple[int, int]:
    """(bytes, objects) of ``root`` as a tree: a shared object counts once per reference.

    That is the memory ``np.stack`` of a list, or an import writing one image per entry, ends
    up using. Each object is measured once (shared sub-trees by their memoised size), so this
    costs time in proportion to the objects actually loaded. Refused past IMPORT_MAX_BYTES or
    the object limit, and for a reference cycle.
    """
    max_bytes, max_objects = limit("IMPORT_MAX_BYTES"), object_limit()
    sizes: dict[int, tuple[int, int]] = {}
    open_: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        obj, closing = stack.pop()
        oid = id(obj)
        if closing:
            nbytes, count = _own_bytes(obj), 1
            for child in _children(obj):
                cb, cn = sizes[id(child)]
                nbytes, count = nbytes + cb, count + cn
            if nbytes > max_bytes:
                raise PickleBudgetError(
                    f"{source}: the pickle expands to more than {max_bytes} bytes of data "
                    "(IMPORT_MAX_BYTES), counting each reference to a shared array; refused"
                )
            if count > max_objects:
                raise PickleBudgetError(
                    f"{source}: the pickle expands to more than {max_objects} objects "
                    f"(one per {OBJECT_BYTES} bytes of IMPORT_MAX_BYTES), counting shared "
                    "references; refused"
                )
            sizes[oid] = (nbytes, count)
            open_.discard(oid)
            continue
        if oid in sizes:
            continue
        if oid in open_:
            raise DatasetImportError(f"{source}: the pickle holds a reference cycle; refused")
        open_.add(oid)
        stack.append((obj, True))
        stack.extend((c, False) for c in _children(obj) if id(c) not in sizes)
    return sizes[id(root)]


def safe_load(fh: BinaryIO, *, source: str = "pickle") -> Any:
    """Load a pickle allowing only numpy arrays and plain containers, within the import limits.

    Raises:
        UnsafePickleError: the pickle names any other global (nothing is executed).
        DatasetImportError: the file is not a readable pickle, or it would build more data or
            objects than IMPORT_MAX_BYTES allows.
    """
    try:
        value = RestrictedUnpickler(fh, source=source).load()
        expanded_size(value, source)
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{source}: {exc}") from None
    except DatasetImportError:
        raise
    except MemoryError:
        raise PickleBudgetError(f"{source}: the pickle needs more memory than there is") from None
    except Exception as exc:
        raise DatasetImportError(f"{source}: not a readable pickle ({exc})"[:1000]) from None
    return value
