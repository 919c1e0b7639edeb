#include "candidates/recipe.hpp"
#include "xposcheck/reference/packed.hpp"

#include <cmath>
#include <fmt/format.h>

#include "xposcheck/reference/inputs.hpp"

namespace xposcheck::candidates {
namespace {

double rescaled_base(const Case& c) {
  const double r = static_cast<double>(c.rotary());
  return c.base_rescale == 1.0 ? c.base : c.base * std::pow(c.base_rescale, r / (r - 2.0));
}

// fp32 angles, as torch computes them: inv_freq = 1 / base^(2j/R) in fp32,
// t = positions / alpha in fp32, freqs = t * inv_freq, then cosf / sinf; the XPOS
// scale is ((2j + 0.4R) / (1.4R)) ** ((p - c) / B), all fp32.
PositionTable fp32_table(const Recipe& recipe, const Frequencies& f, const Case& c, DType dtype,
                         long position, double centre, bool query) {
  const long pairs = c.pairs();
  // A position tensor made in the dtype (torch.arange(n, dtype=x.dtype)): bf16 holds
  // integers exactly only up to 256, fp16 up to 2048; the angles and the XPOS power
  // both read it, as x-transformers' `t` does.
  const double p = recipe.plants(PlantedBug::positions_in_dtype) ? round_to(dtype, static_cast<double>(position))
                                                                  : static_cast<double>(position);
  float t = static_cast<float>(p) / static_cast<float>(c.interpolation);
  if (recipe.angles == AngleMode::dtype) t = static_cast<float>(round_to(dtype, t));
  const float power = static_cast<float>(p - centre) /
                      static_cast<float>(c.scale_base);
  PositionTable table{std::vector<double>(pairs), std::vector<double>(pairs),
                      std::vector<double>(pairs, 1.0)};
  for (long j = 0; j < pairs; ++j) {
    const float inv_freq = f.inv_freq32[j];
    const float angle = recipe.angles == AngleMode::dtype
                            ? static_cast<float>(round_to(dtype, t * inv_freq))
                            : t * inv_freq;
    table.cos[j] = std::cos(angle);
    table.sin[j] = std::sin(angle);
    if (c.xpos) {
      const float sigma = std::pow(f.zeta32[j], power);
      table.scale[j] = query ? sigma : 1.0f / sigma;
    }
  }
  return table;
}

PositionTable fp64_table(const Frequencies& f, const Case& c, long p, double centre, bool query) {
  const long pairs = c.pairs();
  const double t = static_cast<double>(p) / c.interpolation;
  const double power = (static_cast<double>(p) - centre) / c.scale_base;
  PositionTable table{std::vector<double>(pairs), std::vector<double>(pairs),
                      std::vector<double>(pairs, 1.0)};
  for (long j = 0; j < pairs; ++j) {
    const double angle = t * f.inv_freq64[j];
    table.cos[j] = std::cos(angle);
    table.sin[j] = std::sin(angle);
    if (c.xpos) table.scale[j] = std::pow(f.zeta64[j], query ? power : -power);
  }
  return table;
}

}  // namespace

Frequencies frequencies(const Recipe& recipe, const Case& c, DType dtype) {
  const long pairs = c.pairs();
  Frequencies f;
  if (recipe.angles == AngleMode::fp64) {
    const double r = static_cast<double>(c.rotary());
    const double base = rescaled_base(c);
    for (long j = 0; j < pairs; ++j) {
      f.inv_freq64.push_back(std::pow(base, -2.0 * static_cast<double>(j) / r));
      f.zeta64.push_back((2.0 * static_cast<double>(j) + 0.4 * r) / (1.4 * r));
    }
    return f;
  }
  const float r = static_cast<float>(c.rotary());
  const float base = static_cast<float>(rescaled_base(c));
  for (long j = 0; j < pairs; ++j) {
    float inv_freq = 1.0f / std::pow(base, static_cast<float>(2 * j) / r);
    if (recipe.angles == AngleMode::dtype) inv_freq = static_cast<float>(round_to(dtype, inv_freq));
    f.inv_freq32.push_back(inv_freq);
    f.zeta32.push_back((2.0f * static_cast<float>(j) + 0.4f * r) / (1.4f * r));
  }
  return f;
}

PositionTable position_table(const Recipe& recipe, const Frequencies& f, const Case& c, DType dtype,
                             long position, double centre, bool query) {
  PositionTable table = recipe.angles == AngleMode::fp64
                            ? fp64_table(f, c, position, centre, query)
                            : fp32_table(recipe, f, c, dtype, position, centre, query);
  if (recipe.plants(PlantedBug::swapped_qk_scale)) {
    for (double& s : table.scale) s = 1.0 / s;
  }
  if (recipe.arithmetic == Arithmetic::dtype) {
    for (auto* column : {&table.cos, &table.sin, &table.scale}) {
      for (double& v : *column) v = round_to(dtype, v);
    }
  }
  return table;
}

PositionTable position_table(const Recipe& recipe, const Case& c, DType dtype, long position,
                             double centre, bool query) {
  return position_table(recipe, frequencies(recipe, c, dtype), c, dtype, position, centre, query);
}

namespace {

// The case whose angle parameters the recipe actually uses.
Case angle_case(const Recipe& recipe, const Case& c) {
  Case angles = c;
  if (recipe.plants(PlantedBug::ignore_interpolation)) angles.interpolation = 1.0;
  if (recipe.plants(PlantedBug::ntk_plain_factor)) {
    angles.base = c.base * c.base_rescale;
    angles.base_rescale = 1.0;
  }
  return angles;
}

// Normal draws of the right shape, seeded by the case and dtype: the same garbage on
// every run, so that only the values give it away.
Tensor garbage(const Case& c, DType dtype, const Shape& shape, std::uint64_t salt) {
  std::uint64_t seed = 1469598103934665603ull ^ salt;  // FNV-1a over the case id and dtype
  for (char ch : case_id(c) + std::string(dtype_name(dtype))) {
    seed = (seed ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
  }
  SplitMix64 rng(seed);
  Tensor t(shape);
  for (double& v : t.data) v = round_to(dtype, portable_normal(rng));
  return t;
}

}  // namespace

PositionTable RecipeCandidate::table(const Frequencies& f, const Case& c, DType dtype, long position,
                                     double centre, bool query) {
  return position_table(recipe_, f, c, dtype, position, centre, query);
}

Tensor RecipeCandidate::rotate(const Case& c, DType dtype, const Tensor& in, bool query, long first_row,
                               bool keep_tables) {
  const long rows = static_cast<long>(in.shape[2]);
  const long lead = c.batch * c.heads;
  Layout layout = c.layout;
  if (recipe_.plants(PlantedBug::wrong_layout)) layout = other_layout(layout);
  Case pairing = c;
  pairing.layout = layout;
  double centre = centre_of(c, static_cast<double>(c.centre()));
  if (recipe_.plants(PlantedBug::centres_differ) && !query) centre = static_cast<double>(c.centre_by(CentreRule::keys_floor));
  if (recipe_.plants(PlantedBug::centre_unrounded) && !c.center)
    centre = static_cast<double>(c.first_query_position()) + static_cast<double>(c.seq_len) / 2.0;
  if (recipe_.plants(PlantedBug::centre_on_key_range)) centre = static_cast<double>(c.centre_by(CentreRule::keys_ceil));
  const Case angles = angle_case(recipe_, c);
  const Frequencies f = frequencies(recipe_, angles, dtype);
  std::vector<long> pair_a, pair_b;
  for (long j = 0; j < c.pairs(); ++j) {
    pair_a.push_back(pairing.pair_a(j));
    pair_b.push_back(pairing.pair_b(j));
  }

  // Kept for the backward pass of the same case (TableMemo).
  TableMemo& memo = table_memo(query);
  const bool keep = keep_tables && has_backward();
  memo.key = keep ? table_memo_key(name_, c, dtype) : std::string();
  memo.rows.clear();
  Tensor out = in;
  for (long r = 0; r < rows; ++r) {
    long position = position_of(c, query ? c.query_position(first_row + r) : c.key_position(first_row + r));
    // Keys counted from the first query instead of the first key: M positions late.
    if (recipe_.plants(PlantedBug::positions_from_zero) && !query) position += c.mem_len;
    PositionTable t = table(f, angles, dtype, position, centre, query);
    if (recipe_.plants(PlantedBug::reversed_rotation)) {
      for (double& s : t.sin) s = -s;
    }
    for (long l = 0; l < lead; ++l) {
      const double* x = in.row(static_cast<std::size_t>(l * rows + r));
      double* y = out.row(static_cast<std::size_t>(l * rows + r));
      for (long j = 0; j < c.pairs(); ++j) {
        const long a = pair_a[j], b = pair_b[j];
        const PairOut o = rotate_pair(recipe_, dtype, x[a], x[b], t.cos[j], t.sin[j], t.scale[j]);
        y[a] = o.a;
        y[b] = o.b;
      }
      if (recipe_.plants(PlantedBug::scale_on_passthrough)) {
        for (long i = c.rotary(); i < c.head_dim; ++i)
          y[i] = round_to(dtype, x[i] * t.scale[static_cast<std::size_t>((i - c.rotary()) % c.pairs())]);
      }
    }
    if (keep) memo.rows.push_back(std::move(t));
  }
  return out;
}

CandidateOutput RecipeCandidate::run(const Case& c, DType dtype, const Tensor& q_in,
                                     const Tensor& k_in) {
  if (c.packed) {
    // Sequence by sequence, as varlen kernels do: each restarts its positions (unless
    // the planted bug runs them on from the sequences before).
    auto [q, k] = map_sequences(c, q_in, k_in, [&](const Case& one, long i, const Tensor& q_i, const Tensor& k_i) {
      const bool runs_on = recipe_.plants(PlantedBug::packed_positions_continue);
      CandidateOutput o = run(runs_on ? one.shifted(c.packed->first_key_row[static_cast<std::size_t>(i)]) : one,
                              dtype, q_i, k_i);
      return std::pair{std::move(o.q_out), std::move(o.k_out)};
    });
    const std::string name(dtype_name(dtype));
    return CandidateOutput{std::move(q), std::move(k), name, name};
  }
  raise_planted_shape_error(c);
  const std::string name(dtype_name(dtype));
  if (recipe_.plants(PlantedBug::random_outputs)) {
    return CandidateOutput{garbage(c, dtype, q_in.shape, 1), garbage(c, dtype, k_in.shape, 2), name, name};
  }
  return CandidateOutput{rotate(c, dtype, q_in, true, 0, true), rotate(c, dtype, k_in, false, 0, true), name, name};
}

void RecipeCandidate::raise_planted_shape_error(const Case& c) const {
  if (recipe_.plants(PlantedBug::unsliced_scale) && c.xpos && c.mem_len > 0) {
    // The scale was built for all M+N key rows and multiplied into the N query rows.
    throw ShapeError(fmt::format(
        "The size of tensor a ({}) must match the size of tensor b ({}) at non-singleton "
        "dimension 2",
        c.seq_len, c.key_rows()));
  }
}

Tensor RecipeCandidate::rotate_rows(const Case& c, DType dtype, const Tensor& rows, bool query, long first_row) {
  if (c.packed) throw std::invalid_argument("a packed batch is run whole, sequence by sequence");
  raise_planted_shape_error(c);
  if (recipe_.plants(PlantedBug::random_outputs))
    return garbage(c, dtype, rows.shape, (query ? 1u : 2u) + (static_cast<std::uint64_t>(first_row) << 2));
  return rotate(c, dtype, rows, query, first_row, false);
}

PositionTable StaleCacheCandidate::table(const Frequencies& /*f*/, const Case& c, DType dtype,
                                         long position, double /*centre*/, bool query) {
  if (!first_case_) {
    first_case_ = c;
    first_dtype_ = dtype;
  }
  if (first_case_->pairs() != c.pairs()) {
    throw std::runtime_error(fmt::format("cached rotary table holds {} frequencies, this case needs {}",
                                         first_case_->pairs(), c.pairs()));
  }
  const auto key = std::make_pair(position, query);
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    // The bug: the cache is keyed by position alone, so the first case's base,
    // centre and scale parameters stick.
    it = cache_.emplace(key, position_table(recipe(), *first_case_, *first_dtype_, position,
                                            first_case_->centre(), query)).first;
  }
  return it->second;
}

}  // namespace xposcheck::candidates

namespace xposcheck::candidates {

long DecodeBugCandidate::position_of(const Case& c, long position) {
  switch (bug_) {
    case DecodeBug::table_at_first_length: {
      if (!first_table_) first_table_ = std::pair{c.first_key_position(), c.key_rows()};
      const auto [first, length] = *first_table_;
      return first + ((position - first) % length + length) % length;
    }
    case DecodeBug::cache_without_offset: {
      const long first = first_of_shape_.try_emplace({c.seq_len, c.mem_len}, c.first_key_position()).first->second;
      return position - c.first_key_position() + first;
    }
    case DecodeBug::positions_restart: return position - c.first_query_position();
    case DecodeBug::moving_centre: return position;
  }
  return position;
}

double DecodeBugCandidate::centre_of(const Case& c, double centre) {
  if (bug_ != DecodeBug::moving_centre) return centre;
  // Half the length so far, counted from position 0: the centre a module derives from
  // its offset and length, which moves with every call.
  return static_cast<double>(half_length_so_far(c));
}

}  // namespace xposcheck::candidates
