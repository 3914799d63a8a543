#include "test_support.h"

#include <atomic>
#include <cstdlib>
#include <new>
#include <string_view>

#include "checkpoint_import.h"
#include "error.h"
#include "synthetic_model.h"

namespace {
std::atomic<size_t> g_allocations{0};
}  // namespace

// Counts every heap allocation in this test binary.
void* operator new(size_t size) {
  ++g_allocations;
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size) { return operator new(size); }
// The nothrow forms too (std::stable_sort's temporary buffer takes one), so that every allocation
// is counted and is freed by the free() below, never by another allocator's delete.
void* operator new(size_t size, const std::nothrow_t&) noexcept {
  ++g_allocations;
  return std::malloc(size ? size : 1);
}
void* operator new[](size_t size, const std::nothrow_t& tag) noexcept { return operator new(size, tag); }
void* operator new(size_t size, std::align_val_t align) {
  ++g_allocations;
  size_t a = static_cast<size_t>(align);
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace t2r::test {

size_t heap_allocations() { return g_allocations.load(); }

TinyModel::TinyModel(bool t2r) {
  bench::SyntheticConfig config;
  bench::synthetic_config("tiny", &config);
  bytes = bench::synthetic_model(config, t2r, DType::F32).serialize();
  model = Model::from_file(
      ModelFile::parse(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), "tiny"));
}

std::string import_error(const std::string& dir) {
  try {
    import_checkpoint(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace t2r::test
