"""Conversions between the protocol's on-disk encodings and arrays or tensors.

bf16 has no NumPy dtype, so it travels either as uint16 bit patterns ('<u2', the
encoding "bits") or as float32 holding values that bf16 represents exactly (the
encoding "float32"). In NumPy the helper hands bf16 data over as float32 arrays
holding bf16 values; in PyTorch as torch.bfloat16 tensors.
"""

import numpy as np

DTYPES = ("fp32", "bf16", "fp16")


def bf16_bits_to_float32(bits):
    """uint16 bf16 bit patterns -> float32 array with the same values (exact)."""
    bits = np.asarray(bits)
    if bits.dtype != np.uint16:
        raise TypeError("bf16 bit patterns must be uint16, got %s" % bits.dtype)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def float32_to_bf16_bits(values):
    """float32 array -> uint16 bf16 bit patterns, rounding to nearest even.

    Values beyond bf16's range round to infinity; NaN stays NaN (quiet).
    """
    x = np.ascontiguousarray(values, dtype=np.float32)
    u = x.view(np.uint32)
    with np.errstate(over="ignore"):
        rounded = ((u + (np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1)))) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        rounded[nan] = ((u[nan] >> 16) | np.uint32(0x0040)).astype(np.uint16)
    return rounded


def round_to_bf16(values):
    """float32 (or wider: rounded to float32 first) -> float32 holding bf16 values."""
    return bf16_bits_to_float32(float32_to_bf16_bits(np.asarray(values, dtype=np.float32)))


def cast(values, dtype):
    """Rounds a NumPy array to a case dtype: float32, float16, or bf16 held in float32.

    float64 input goes to bf16 through float32 (two roundings, which can differ from
    one rounding only on exact ties of the wider value).
    """
    if dtype == "fp32":
        return np.asarray(values, dtype=np.float32)
    if dtype == "fp16":
        return np.asarray(values, dtype=np.float16)
    if dtype == "bf16":
        return round_to_bf16(values)
    raise ValueError("unknown dtype %r (fp32, bf16, fp16)" % (dtype,))


def input_to_numpy(array, dtype, bf16_encoding):
    """An input file's array -> the NumPy array handed to a candidate."""
    if dtype == "bf16":
        if bf16_encoding == "bits" or array.dtype == np.uint16:
            return bf16_bits_to_float32(array)
        return np.asarray(array, dtype=np.float32)
    return array


def input_to_torch(array, dtype, bf16_encoding):
    """An input file's array -> a torch tensor of the case's dtype."""
    import torch

    if dtype == "bf16":
        if array.dtype == np.uint16:
            return torch.from_numpy(np.ascontiguousarray(array).view(np.int16)).view(torch.bfloat16)
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(array))


def output_to_numpy(value):
    """A candidate's output (NumPy array or torch tensor) -> the array written to disk.

    torch.bfloat16 becomes uint16 bit patterns; every other dtype is written as it is,
    so that a wrong output dtype reaches the harness and is reported.
    """
    if isinstance(value, np.ndarray):
        return _bf16_as_bits(value)
    module = type(value).__module__
    if module.startswith("torch"):
        import torch

        tensor = value.detach().cpu().contiguous()
        if tensor.dtype == torch.bfloat16:
            return tensor.view(torch.int16).numpy().view(np.uint16)
        return tensor.numpy()
    if hasattr(value, "__array__"):
        return _bf16_as_bits(np.asarray(value))
    raise TypeError("outputs must be NumPy arrays or torch tensors, got %s" % type(value).__name__)


def _bf16_as_bits(array):
    # ml_dtypes' bfloat16 (JAX) has no .npy descriptor NumPy can read back.
    if array.dtype.name == "bfloat16":
        return np.ascontiguousarray(array).view(np.uint16)
    return array
