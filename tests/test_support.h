// What several test files share: a heap-allocation counter (the binary's operator new counts every
// allocation) and a tiny synthetic model that needs no checkpoint.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "model.h"

namespace t2r::test {

size_t heap_allocations();  // allocations so far in this process

// The error importing a checkpoint directory gives ("" when it imports).
std::string import_error(const std::string& dir);

// One layer, d 64, two heads sharing one kv head, vocab 256 (tools/bench's "tiny"), T2R or softmax,
// loaded from memory.
struct TinyModel {
  std::vector<unsigned char> bytes;
  std::unique_ptr<Model> model;
  explicit TinyModel(bool t2r);
};

}  // namespace t2r::test
