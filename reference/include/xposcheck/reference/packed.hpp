#pragma once
// Packed batches (Case::packed): every computation on one runs sequence by sequence,
// each sequence a case of its own on its rows of the packed tensors.
#include <utility>

#include "xposcheck/reference/case.hpp"
#include "xposcheck/reference/tensor.hpp"

namespace xposcheck {

// Rows first .. first + count - 1 of the row dimension (the one before the last) of
// every leading slice: [.., rows, D] -> [.., count, D].
Tensor rows_of(const Tensor& t, long first, long count);
// Writes part's rows into whole's row dimension from row `first` on.
void put_rows(Tensor& whole, const Tensor& part, long first);

// Query rows (q) and key rows (k) of packed sequence i.
inline Tensor sequence_queries(const Case& c, const Tensor& q, long i) {
  const auto at = static_cast<std::size_t>(i);
  return rows_of(q, c.packed->first_query_row[at], c.packed->sequences[at].seq_len);
}
inline Tensor sequence_keys(const Case& c, const Tensor& k, long i) {
  const auto at = static_cast<std::size_t>(i);
  return rows_of(k, c.packed->first_key_row[at], c.packed->first_key_row[at + 1] - c.packed->first_key_row[at]);
}

// Runs f(sequence_case(i), i, its q rows, its k rows) -> (q-shaped, k-shaped) for every
// sequence and packs the results like the inputs.
template <class F>
std::pair<Tensor, Tensor> map_sequences(const Case& c, const Tensor& q, const Tensor& k, F f) {
  std::pair<Tensor, Tensor> out{Tensor(q.shape), Tensor(k.shape)};
  for (long i = 0; i < c.packed->count(); ++i) {
    const auto at = static_cast<std::size_t>(i);
    auto [q_part, k_part] = f(c.sequence_case(i), i, sequence_queries(c, q, i), sequence_keys(c, k, i));
    put_rows(out.first, q_part, c.packed->first_query_row[at]);
    put_rows(out.second, k_part, c.packed->first_key_row[at]);
  }
  return out;
}

}  // namespace xposcheck
