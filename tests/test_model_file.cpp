// The model file format: round trip through the writer and reader, and refusal of corrupt files.
#include <doctest/doctest.h>

#include <cstring>

#include "checksum.h"
#include "error.h"
#include "model_file.h"
#include "model_writer.h"

using namespace t2r;

namespace {

std::vector<unsigned char> small_file() {
  ModelWriter w;
  w.metadata().set("general.architecture", std::string("test"));
  w.metadata().set("model.dim", int64_t(3));
  w.metadata().set("model.norm_eps", 1e-5);
  w.metadata().set("tokenizer.merges", std::vector<int32_t>{1, 2, 3, 4});
  w.metadata().set("tokenizer.bpe_tokens", std::vector<std::string>{"a", std::string("\0\xff", 2), ""});
  const float a[6] = {1, -2, 3.5f, 0.1f, 65504, -1e-8f};
  const float b[3] = {0.5f, 0.25f, -0.125f};
  w.add_tensor("a", DType::F16, {2, 3}, a);
  w.add_tensor("b", DType::F32, {3}, b);
  w.add_tensor("c", DType::BF16, {3, 2}, a);
  return w.serialize();
}

std::string as_view(const std::vector<unsigned char>& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Rewrites the checksum so that a deliberately edited file reaches the check under test.
void reseal(std::vector<unsigned char>& bytes) {
  std::memset(bytes.data() + 80, 0, 8);
  uint64_t sum = checksum64(bytes.data(), bytes.size());
  std::memcpy(bytes.data() + 80, &sum, 8);
}

std::string error_of(const std::vector<unsigned char>& bytes) {
  const std::string copy = as_view(bytes);
  try {
    ModelFile::parse(copy, "test.t2r");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("XXH64 matches the published test vectors") {
  CHECK(checksum64("", 0) == 0xEF46DB3751D8E999ull);
  CHECK(checksum64("a", 1) == 0xD24EC4F1A98C6E5Bull);
  CHECK(checksum64("abc", 3) == 0x44BC2CF5AD770999ull);
  const char* fox = "The quick brown fox jumps over the lazy dog";
  CHECK(checksum64(fox, std::strlen(fox)) == 0x0B242D361FDA71BCull);
  // Incremental updates in odd pieces give the same digest as one call.
  std::string long_text;
  for (int i = 0; i < 1000; ++i) long_text += char('a' + i % 26);
  Checksum64 pieces;
  for (size_t i = 0; i < long_text.size(); i += 7) pieces.update(long_text.data() + i, std::min<size_t>(7, long_text.size() - i));
  CHECK(pieces.digest() == checksum64(long_text.data(), long_text.size()));
}

TEST_CASE("f16 and bf16 conversions round to nearest even") {
  CHECK(f32_to_f16(1.0f) == 0x3c00);
  CHECK(f32_to_f16(65504.0f) == 0x7bff);
  CHECK(f32_to_f16(65520.0f) == 0x7c00);  // rounds to infinity
  CHECK(f32_to_f16(5.9604645e-08f) == 0x0001);  // smallest subnormal
  CHECK(f32_to_f16(2.98e-08f) == 0x0000);
  CHECK(f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00);  // tie, to even
  CHECK(f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02);  // tie, to even (up)
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    REQUIRE(f32_to_f16(f16_to_f32(uint16_t(h))) == h);  // every finite half survives a round trip
  }
  CHECK(f32_to_bf16(1.0f) == 0x3f80);
  CHECK(bf16_to_f32(0x3f80) == 1.0f);
  CHECK(f32_to_bf16(1.00390625f) == 0x3f80);  // 1 + 2^-8 is a tie: to even
}

TEST_CASE("a written model file reads back exactly") {
  const std::vector<unsigned char> bytes = small_file();
  const std::string copy = as_view(bytes);
  ModelFile file = ModelFile::parse(copy, "test.t2r");
  CHECK(file.metadata().get_string("general.architecture") == "test");
  CHECK(file.metadata().get_int("model.dim") == 3);
  CHECK(file.metadata().get_float("model.norm_eps") == 1e-5);
  CHECK(file.metadata().get_int_array("tokenizer.merges") == std::vector<int32_t>{1, 2, 3, 4});
  CHECK(file.metadata().get_string_array("tokenizer.bpe_tokens")[1] == std::string("\0\xff", 2));
  REQUIRE(file.tensors().size() == 3);
  const TensorInfo& a = file.require("a", {2, 3});
  CHECK(a.dtype == DType::F16);
  const uint16_t* half = static_cast<const uint16_t*>(a.data);
  CHECK(f16_to_f32(half[2]) == 3.5f);
  CHECK(f16_to_f32(half[4]) == 65504.0f);
  const TensorInfo& b = file.require("b", {3});
  CHECK(static_cast<const float*>(b.data)[2] == -0.125f);
  for (const auto& t : file.tensors()) {
    CHECK((static_cast<const char*>(t.data) - copy.data()) % 64 == 0);
  }
  CHECK_THROWS_WITH_AS(file.require("a", {3, 2}), "test.t2r: tensor 'a' has shape [2, 3], expected [3, 2]", Error);
  CHECK_THROWS_WITH_AS(file.require("z", {1}), "test.t2r: missing tensor 'z'", Error);
  CHECK_THROWS_WITH_AS(file.metadata().get_int("general.architecture"),
                       "model metadata: key 'general.architecture' is not an int", Error);
}

TEST_CASE("corrupt model files are refused with a specific message") {
  const std::vector<unsigned char> good = small_file();

  SUBCASE("every truncation") {
    for (size_t n = 0; n < good.size(); ++n) {
      std::vector<unsigned char> cut(good.begin(), good.begin() + long(n));
      CAPTURE(n);
      CHECK(!error_of(cut).empty());
    }
  }
  SUBCASE("bad magic") {
    auto bad = good;
    bad[0] = 'X';
    CHECK(error_of(bad) == "test.t2r: not a t2r model file (bad magic)");
  }
  SUBCASE("future version") {
    auto bad = good;
    bad[8] = 7;
    CHECK(error_of(bad) == "test.t2r: format version 7 is not supported (this build reads version 1)");
  }
  SUBCASE("flipped data byte") {
    auto bad = good;
    bad[bad.size() - 100] ^= 1;  // inside tensor data
    CHECK(error_of(bad) == "test.t2r: checksum mismatch: the file is corrupt");
  }
  SUBCASE("size mismatch") {
    auto bad = good;
    bad.push_back(0);
    CHECK(error_of(bad).find("header says") != std::string::npos);
  }
  SUBCASE("tensor offset outside the data") {
    auto bad = good;
    // The table's first entry: name length 4 + "a" (1) + dtype 4 + ndim 4 + 2 dims 16, then offset.
    uint64_t table_offset;
    std::memcpy(&table_offset, bad.data() + 48, 8);
    const uint64_t huge = uint64_t(1) << 40;
    std::memcpy(bad.data() + table_offset + 4 + 1 + 4 + 4 + 16, &huge, 8);
    reseal(bad);
    CHECK(error_of(bad).find("is misaligned or outside the data section") != std::string::npos);
  }
  SUBCASE("overlapping tensors") {
    auto bad = good;
    uint64_t table_offset;
    std::memcpy(&table_offset, bad.data() + 48, 8);
    // Second entry ("b", 1 dim) starts after the first (4 + 1 + 4 + 4 + 16 + 8 + 8 = 45 bytes).
    const uint64_t zero = 0;
    std::memcpy(bad.data() + table_offset + 45 + 4 + 1 + 4 + 4 + 8, &zero, 8);
    reseal(bad);
    CHECK(error_of(bad) == "test.t2r: tensors 'a' and 'b' overlap");
  }
  SUBCASE("shape product overflows") {
    auto bad = good;
    uint64_t table_offset;
    std::memcpy(&table_offset, bad.data() + 48, 8);
    const uint64_t big = uint64_t(1) << 62;
    std::memcpy(bad.data() + table_offset + 4 + 1 + 4 + 4, &big, 8);
    std::memcpy(bad.data() + table_offset + 4 + 1 + 4 + 4 + 8, &big, 8);
    reseal(bad);
    CHECK(error_of(bad).find("tensor 'a' has an invalid shape") != std::string::npos);
  }
  SUBCASE("dtype and size disagree") {
    auto bad = good;
    uint64_t table_offset;
    std::memcpy(&table_offset, bad.data() + 48, 8);
    bad[table_offset + 4 + 1] = 0;  // f16 -> f32: the stored size is now too small
    reseal(bad);
    CHECK(error_of(bad).find("needs 24 bytes, table says 12") != std::string::npos);
  }
  SUBCASE("unknown dtype") {
    auto bad = good;
    uint64_t table_offset;
    std::memcpy(&table_offset, bad.data() + 48, 8);
    bad[table_offset + 4 + 1] = 9;
    reseal(bad);
    CHECK(error_of(bad).find("tensor 'a' has unknown dtype 9") != std::string::npos);
  }
  SUBCASE("huge metadata count") {
    auto bad = good;
    const uint32_t many = 0xffffffffu;
    std::memcpy(bad.data() + 40, &many, 4);
    reseal(bad);
    CHECK(!error_of(bad).empty());
  }
}
