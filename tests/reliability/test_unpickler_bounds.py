"""The restricted .pkl unpickler refuses, before allocating, what a small file cannot hold.

Every malicious pickle here is written opcode by opcode (see ``pickletools``), as an attacker would.
"""

from __future__ import annotations

import pickle
import struct
import tracemalloc
from collections import OrderedDict

import numpy as np
import pytest

from net_detr2.checkpoint import CheckpointLoadError, load_pkl

# ---------------------------------------------------------------------------- opcode helpers
PROTO2 = b"\x80\x02"
MARK, STOP, REDUCE, BUILD, APPEND, APPENDS = b"(", b".", b"R", b"b", b"a", b"e"
TUPLE, TUPLE1, TUPLE2, TUPLE3, EMPTY_LIST, NEWFALSE = b"t", b"\x85", b"\x86", b"\x87", b"]", b"\x89"


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def long1(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def text(s: str) -> bytes:
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def short_bytes(b: bytes) -> bytes:
    return b"C" + bytes([len(b)]) + b


def put(i: int) -> bytes:
    return b"q" + bytes([i])


def get(i: int) -> bytes:
    return b"h" + bytes([i])


DTYPE_F4 = glob("numpy", "dtype") + text("f4") + NEWFALSE + b"\x88" + TUPLE3 + REDUCE  # numpy.dtype('f4', False, True)
EMPTY_ARRAY = glob("numpy.core.multiarray", "_reconstruct") + glob("numpy", "ndarray") + long1(0) + TUPLE1
EMPTY_ARRAY += short_bytes(b"b") + TUPLE3 + REDUCE  # _reconstruct(ndarray, (0,), b'b'), as numpy pickles it


def refused(tmp_path, data: bytes, match: str) -> str:
    """Load ``data`` as a .pkl; assert it is refused naming the file (message matching ``match``) while the
    loader allocates less than 4 MB at its peak. Returns the message."""
    path = tmp_path / "crafted.pkl"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointLoadError, match=match) as e:
            load_pkl(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(e.value)
    assert peak < 4 * 2**20, f"the loader allocated {peak:,} bytes before refusing"
    return str(e.value)


# ---------------------------------------------------------------------------- the cases
def test_bytearray_of_1e11_bytes_is_refused_before_allocating(tmp_path):
    data = PROTO2 + glob("__builtin__", "bytearray") + long1(10**11) + TUPLE1 + REDUCE + STOP
    assert len(data) <= 35
    msg = refused(tmp_path, data, r"asks for bytearray\(100,000,000,000\)")
    assert f"more than a {len(data)}-byte pickle can hold" in msg
    refused(tmp_path, PROTO2 + glob("builtins", "bytes") + long1(10**11) + TUPLE1 + REDUCE + STOP, r"bytes\(100,000")


def test_ndarray_of_1e11_elements_is_refused_before_allocating(tmp_path):
    # numpy.ndarray((10**11,)) called directly: 28 bytes
    data = PROTO2 + glob("numpy", "ndarray") + long1(10**11) + TUPLE1 + TUPLE1 + REDUCE + STOP
    assert len(data) <= 30
    refused(tmp_path, data, r"calls numpy\.ndarray\(\.\.\.\) directly")
    # _reconstruct(ndarray, (10**10,), b'b'): 10 GB that numpy would reserve at once
    data = PROTO2 + glob("numpy.core.multiarray", "_reconstruct") + glob("numpy", "ndarray") + long1(10**10)
    data += TUPLE1 + short_bytes(b"b") + TUPLE3 + REDUCE + STOP
    refused(tmp_path, data, r"asks for an array of shape \(10000000000,\) \(10,000,000,000 bytes\)")


def test_array_state_larger_than_its_data_is_refused(tmp_path):
    # The state numpy's BUILD applies: (version, shape, dtype, fortran, raw data) with 10^11 elements, no data.
    state = MARK + long1(1) + long1(10**11) + TUPLE1 + DTYPE_F4 + NEWFALSE + short_bytes(b"") + TUPLE
    refused(
        tmp_path, PROTO2 + EMPTY_ARRAY + state + BUILD + STOP, r"needs 400,000,000,000 bytes of data, the file gives 0"
    )
    # An object array of 10^11 elements whose data is an empty list.
    dtype_o = glob("numpy", "dtype") + text("O8") + NEWFALSE + b"\x88" + TUPLE3 + REDUCE
    state = MARK + long1(1) + long1(10**11) + TUPLE1 + dtype_o + NEWFALSE + EMPTY_LIST + TUPLE
    refused(tmp_path, PROTO2 + EMPTY_ARRAY + state + BUILD + STOP, r"object array of shape \(100000000000,\)")


def test_declared_lengths_and_memo_indices_past_the_file_are_refused(tmp_path):
    # BINBYTES8 / BINUNICODE8 declaring 10^11 bytes: the C unpickler would reserve them before reading.
    for opcode in (b"\x8e", b"\x8d"):
        data = b"\x80\x04" + opcode + struct.pack("<Q", 10**11) + STOP
        refused(tmp_path, data, r"Cannot read checkpoint .*corrupt or truncated pickle")
    # LONG_BINPUT at index 10^7: the unpickler grows (and zeroes) its memo table to that size.
    refused(tmp_path, PROTO2 + b"N" + b"r" + struct.pack("<I", 10**7) + STOP, r"memo index 10,000,000 after 2 opcodes")


def test_repeated_references_cannot_multiply_memory(tmp_path):
    """A 64 KiB string re-encoded 2000 times through the memo would build 128 MiB from an 80 KiB file."""
    body = PROTO2 + glob("_codecs", "encode") + put(0) + text("x" * 65536) + put(1) + text("latin1") + put(2)
    body += EMPTY_LIST + MARK + (get(0) + get(1) + get(2) + TUPLE2 + REDUCE) * 2000 + APPENDS + STOP
    assert len(body) < 90_000
    refused(tmp_path, body, r"asks for a byte string")
    # list(<the same bytes>) repeated: one pointer per byte each time.
    body = PROTO2 + glob("__builtin__", "list") + put(0) + b"B" + struct.pack("<I", 65536) + b"y" * 65536 + put(1)
    body += EMPTY_LIST + MARK + (get(0) + get(1) + TUPLE1 + REDUCE) * 200 + APPENDS + STOP
    refused(tmp_path, body, r"asks for a list of 65536 items")


def test_only_latin1_encoding_and_known_globals(tmp_path):
    data = PROTO2 + glob("_codecs", "encode") + text("abc") + text("zlib") + TUPLE2 + REDUCE + STOP
    refused(tmp_path, data, r"_codecs\.encode is only allowed for latin-1 text")
    refused(tmp_path, PROTO2 + glob("builtins", "eval") + text("1") + TUPLE1 + REDUCE + STOP, r"'builtins\.eval'")


# ---------------------------------------------------------------------------- real pickles still load
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_pickles_of_every_protocol_load_as_plain_arrays(tmp_path, protocol):
    weights = OrderedDict(
        [
            ("conv.weight", np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)),
            ("fortran", np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))),
            ("empty", np.zeros((0, 4), np.float32)),
            ("mask", np.array([True, False])),
            ("counter", np.int64(12)),
            ("scale", np.float32(0.5)),
            ("half", np.ones(3, np.float16)),
        ]
    )
    path = tmp_path / "w.pkl"
    path.write_bytes(pickle.dumps({"model": weights, "__author__": "me", "extra": [1, (np.ones(2), "x")]}, protocol))
    loaded = load_pkl(str(path))
    assert list(loaded["model"]) == list(weights)
    for k, v in weights.items():
        got = loaded["model"][k]
        assert type(got) is type(v), k  # plain np.ndarray / numpy scalar, not the loader's guarded class
        assert got.dtype == v.dtype and np.array_equal(got, v), k
    assert loaded["model"]["fortran"].flags.f_contiguous
    assert type(loaded["extra"][1][0]) is np.ndarray and loaded["__author__"] == "me"


def test_cycles_load_and_deep_nesting_is_refused(tmp_path):
    cyclic: list = [np.ones(2)]
    cyclic.append(cyclic)
    path = tmp_path / "cycle.pkl"
    path.write_bytes(pickle.dumps({"model": {}, "c": cyclic}, 2))
    loaded = load_pkl(str(path))
    assert loaded["c"][1] is loaded["c"] and type(loaded["c"][0]) is np.ndarray
    deep = PROTO2 + EMPTY_LIST * 100 + APPEND * 99 + STOP
    refused(tmp_path, deep, r"nested more than 64 levels")
