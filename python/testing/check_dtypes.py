"""Self-check of the helper's bf16 conversions, run by the test suite: every bit
pattern survives bits -> float32 -> bits, ties round to even, overflow goes to
infinity, NaN stays NaN. Prints "ok" and exits 0, or raises."""

import numpy as np

from xposcheck_candidate import bf16_bits_to_float32, cast, float32_to_bf16_bits, round_to_bf16

bits = np.arange(0x10000, dtype=np.uint32).astype(np.uint16)
values = bf16_bits_to_float32(bits)
finite = ~np.isnan(values)
assert (float32_to_bf16_bits(values)[finite] == bits[finite]).all()
assert np.isnan(bf16_bits_to_float32(float32_to_bf16_bits(values[~finite]))).all()

one_ulp = np.float32(2.0 ** -7)
ties = np.array([1 + one_ulp / 2, 1 + 3 * one_ulp / 2, -(1 + one_ulp / 2)], dtype=np.float32)
assert list(round_to_bf16(ties)) == [1.0, 1 + 2 * one_ulp, -1.0], round_to_bf16(ties)
above = np.nextafter(np.float32(1 + one_ulp / 2), np.float32(2))
assert round_to_bf16(np.array([above]))[0] == 1 + one_ulp
assert np.isinf(round_to_bf16(np.array([3.4e38], dtype=np.float32)))[0]
assert cast(np.array([1.0 + 2.0 ** -30]), "fp16").dtype == np.float16
assert cast(np.array([0.1]), "bf16")[0] == np.float32(0.10009765625)
print("ok")
