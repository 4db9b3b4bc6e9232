// numamap/detail/hash_mix.hpp — turning the user's hash into shard and bucket bits.
//
// libstdc++'s std::hash of an integer is the identity, so sequential ids would fill a few
// buckets and a few shards. Every hash goes through a 64-bit finaliser first, and the two
// consumers take disjoint bits of the result:
//
//   bits 48..63  shard     multiply-shift: ((h >> 48) * shard_count) >> 16, no modulo, any count
//   bits  0..31  bucket    h & mask; all 32 bits are stored in the entry, compared before the
//                          key on a probe, and reused when a table is rebuilt (no rehashing)
//   bits 32..47  unused since entries moved into the slots (they carried a 16-bit tag)
#pragma once

#include <cstddef>
#include <cstdint>

#include "../config.hpp"

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

/// One 64x64->128-bit multiply by the golden-ratio constant, high and low halves folded
/// (the mixer of abseil's and wyhash's integer paths): every output bit depends on many
/// input bits, for a multiply and a xor on the hit path.
inline std::uint64_t mix64(std::uint64_t h) noexcept {
  __extension__ using u128 = unsigned __int128;
  const u128 p = static_cast<u128>(h) * 0x9e3779b97f4a7c15ULL;
  return static_cast<std::uint64_t>(p) ^ static_cast<std::uint64_t>(p >> 64);
}

struct hashed {
  std::uint64_t h;

  constexpr std::uint32_t bucket_bits() const noexcept { return static_cast<std::uint32_t>(h); }
  constexpr std::size_t shard(std::size_t shard_count) const noexcept {
    return static_cast<std::size_t>(((h >> 48) * shard_count) >> 16);
  }
};

/// The largest shard count the multiply-shift above spreads over.
inline constexpr std::size_t max_shards = std::size_t{1} << 16;

}  // namespace detail
NUMAMAP_END_NAMESPACE
