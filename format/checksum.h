// XXH64 (Yann Collet's xxHash, 64-bit variant), computed incrementally. Chosen for the model
// file checksum because it runs near memory bandwidth, so verifying a model costs little load time.
#pragma once

#include <cstddef>
#include <cstdint>

namespace t2r {

class Checksum64 {
 public:
  explicit Checksum64(uint64_t seed = 0);
  void update(const void* data, size_t size);
  uint64_t digest() const;

 private:
  uint64_t lanes_[4];
  uint64_t seed_;
  uint64_t total_ = 0;
  unsigned char buffer_[32];
  size_t buffered_ = 0;
};

uint64_t checksum64(const void* data, size_t size);

}  // namespace t2r
