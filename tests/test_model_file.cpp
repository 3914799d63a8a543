// The model file format: round trip through the writer and reader, and refusal of corrupt or
// hostile files, by the reader and by the model binding on top of it, each with its own message.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "checksum.h"
#include "error.h"
#include "model.h"
#include "model_file.h"
#include "model_writer.h"
#include "synthetic_model.h"

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

TEST_CASE("empty arrays and strings in metadata read back") {
  // Found by UndefinedBehaviorSanitizer: reading an empty int32 array passed memcpy a null pointer.
  ModelWriter w;
  w.metadata().set("ints", std::vector<int32_t>{});
  w.metadata().set("strings", std::vector<std::string>{});
  w.metadata().set("text", std::string());
  const std::vector<unsigned char> bytes = w.serialize();
  const std::string copy = as_view(bytes);
  ModelFile file = ModelFile::parse(copy, "test.t2r");
  CHECK(file.metadata().get_int_array("ints").empty());
  CHECK(file.metadata().get_string_array("strings").empty());
  CHECK(file.metadata().get_string("text").empty());
  CHECK(file.tensors().empty());
}

TEST_CASE("corrupt model files are refused with a specific message") {
  const std::vector<unsigned char> good = small_file();

  SUBCASE("every truncation") {
    for (size_t n = 0; n < good.size(); ++n) {
      std::vector<unsigned char> cut(good.begin(), good.begin() + long(n));
      CAPTURE(n);
      const std::string expected =
          n < 12   ? "test.t2r: too small to be a t2r model (" + std::to_string(n) + " bytes)"
          : n < 96 ? "test.t2r: truncated header"
                   : "test.t2r: file is " + std::to_string(n) + " bytes but its header says " +
                         std::to_string(good.size()) + " (truncated or padded)";
      CHECK(error_of(cut) == expected);
    }
  }
  SUBCASE("declared sizes larger than the file") {
    // Each section in turn claims more bytes than the file holds; the header's file size agrees
    // with the file, so only the section check can catch it.
    for (size_t field : {32, 56, 72}) {  // metadata_size, tensor table size, data_size
      auto bad = good;
      const uint64_t huge = uint64_t(1) << 62;
      std::memcpy(bad.data() + field, &huge, 8);
      reseal(bad);
      CAPTURE(field);
      CHECK(error_of(bad).find("lies outside the file or overlaps the previous section") != std::string::npos);
    }
    // A tensor placed past the end of the data section.
    auto bad = good;
    uint64_t table_offset;
    std::memcpy(&table_offset, bad.data() + 48, 8);
    const uint64_t beyond = 192;  // "c", the third entry (after 45 and 37 bytes), holds 12 bytes at 128
    std::memcpy(bad.data() + table_offset + 45 + 37 + 4 + 1 + 4 + 4 + 16, &beyond, 8);
    reseal(bad);
    CHECK(error_of(bad).find("tensor 'c' data [192, +12) is misaligned or outside the data section") !=
          std::string::npos);
  }
  SUBCASE("huge metadata string and key") {
    auto bad = good;
    // The first entry is general.architecture (4 + 20 key bytes, 4 type bytes), then its length.
    const uint64_t huge = uint64_t(1) << 60;
    std::memcpy(bad.data() + 96 + 4 + 20 + 4, &huge, 8);
    reseal(bad);
    CHECK(error_of(bad) == "test.t2r: metadata at byte 36: count 1152921504606846976 exceeds the section");
    bad = good;
    const uint32_t long_key = 100000;
    std::memcpy(bad.data() + 96, &long_key, 4);
    reseal(bad);
    CHECK(error_of(bad) == "test.t2r: metadata at byte 4: name length 100000 out of range");
  }
  SUBCASE("huge metadata count") {
    auto bad = good;
    const uint32_t many = 0xffffffffu;
    std::memcpy(bad.data() + 40, &many, 4);
    reseal(bad);
    CHECK(!error_of(bad).empty());
  }
}

TEST_CASE("tensors holding NaN or infinity are refused by the reader and never written") {
  ModelWriter w;
  const std::vector<float> ones(64, 1.0f);
  w.add_tensor("f32", DType::F32, {4}, ones.data());
  w.add_tensor("f16", DType::F16, {2, 3}, ones.data());
  w.add_tensor("bf16", DType::BF16, {5}, ones.data());
  w.add_tensor("q8", DType::Q8_0, {2, 32}, ones.data());
  const std::vector<unsigned char> good = w.serialize();
  const std::string copy = as_view(good);
  ModelFile file = ModelFile::parse(copy, "test.t2r");
  // Rewrites `bytes` bytes of tensor `name` at byte `at` of its data.
  auto poisoned = [&](const char* name, size_t at, const void* value, size_t bytes) {
    auto bad = good;
    const size_t offset = size_t(static_cast<const unsigned char*>(file.find(name)->data) -
                                 reinterpret_cast<const unsigned char*>(copy.data()));
    std::memcpy(bad.data() + offset + at, value, bytes);
    reseal(bad);
    return error_of(bad);
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const uint16_t f16_inf = 0x7c00, bf16_minus_inf = 0xff80, f16_nan = 0x7e01;
  CHECK(poisoned("f32", 8, &nan, 4) == "test.t2r: tensor 'f32' holds NaN at element 2");
  CHECK(poisoned("f16", 10, &f16_inf, 2) == "test.t2r: tensor 'f16' holds +inf at element 5");
  CHECK(poisoned("bf16", 0, &bf16_minus_inf, 2) == "test.t2r: tensor 'bf16' holds -inf at element 0");
  CHECK(poisoned("q8", 34, &f16_nan, 2) == "test.t2r: tensor 'q8' holds NaN at element 32 (its block's scale)");
  CHECK(poisoned("q8", 36, &f16_nan, 2) == "");  // a quant byte: any value is a finite weight

  // The writer refuses what would become non-finite in the stored dtype.
  const float big[4] = {1, 1e5f, 1, 1};
  CHECK_THROWS_WITH_AS(w.add_tensor("h", DType::F16, {4}, big),
                       "tensor 'h' cannot be stored as f16: element 1 (100000.000000) becomes +inf", Error);
  std::vector<float> row(64, 1.0f);
  row[40] = 1e10f;  // q8_0 scale 1e10 / 127 overflows f16
  CHECK_THROWS_WITH_AS(w.add_tensor("q", DType::Q8_0, {1, 64}, row.data()),
                       "tensor 'q' cannot be stored as q8_0: the scale of the block at element 32 becomes +inf", Error);
  row[40] = nan;
  CHECK_THROWS_WITH_AS(w.add_tensor("n", DType::F32, {64}, row.data()),
                       "tensor 'n' cannot be stored as f32: element 40 (nan) becomes NaN", Error);
}

TEST_CASE("a streamed tensor is written a chunk of rows at a time as the bytes an added one has") {
  // 262145 rows of 64: just over one chunk (16M floats), so two reads.
  const uint64_t rows = 262145, cols = 64;
  std::vector<float> values(rows * cols);
  for (size_t i = 0; i < values.size(); ++i) values[i] = float(int(i % 97) - 48) / 16.0f;
  ModelWriter added, streamed;
  added.add_tensor("m", DType::Q4_0, {rows, cols}, values.data());
  added.add_tensor("v", DType::F32, {cols}, values.data());
  size_t reads = 0;
  uint64_t poisoned_row = rows;  // none
  streamed.add_streamed_tensor("m", DType::Q4_0, {rows, cols}, [&](uint64_t first, uint64_t count, float* out) {
    ++reads;
    std::copy(values.begin() + long(first * cols), values.begin() + long((first + count) * cols), out);
    if (poisoned_row >= first && poisoned_row < first + count) out[(poisoned_row - first) * cols] = NAN;
  });
  streamed.add_tensor("v", DType::F32, {cols}, values.data());
  const std::string path = "/tmp/t2r-streamed-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  std::vector<size_t> progress;
  const uint64_t size = streamed.write(path, [&](size_t done, size_t total, uint64_t) {
    CHECK(total == 2);
    progress.push_back(done);
  });
  CHECK(reads == 2);
  CHECK(progress == std::vector<size_t>{1, 2});
  const std::vector<unsigned char> expected = added.serialize();
  CHECK(size == expected.size());
  FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f);
  std::vector<unsigned char> got(expected.size() + 1);
  CHECK(std::fread(got.data(), 1, got.size(), f) == expected.size());
  std::fclose(f);
  got.resize(expected.size());
  CHECK(got == expected);
  CHECK(ModelFile::open(path).find("m") != nullptr);  // its checksum verifies

  // A value that is not finite in the second chunk: an error naming the tensor, and no file left.
  std::remove(path.c_str());
  poisoned_row = rows - 1;
  CHECK_THROWS_WITH_AS(streamed.write(path), "checkpoint tensor for 'm' contains NaN or infinity", Error);
  CHECK(std::fopen(path.c_str(), "rb") == nullptr);
  CHECK(std::fopen((path + ".partial").c_str(), "rb") == nullptr);
}

TEST_CASE("a file with many metadata entries and tensors reads without quadratic work") {
  // Duplicate checks and lookups used to compare every pair: minutes for a hostile file.
  ModelWriter w;
  for (int i = 0; i < 100000; ++i) w.metadata().set("k" + std::to_string(i), int64_t(i));
  const float one = 1;
  for (int i = 0; i < 5000; ++i) w.add_tensor("t" + std::to_string(i), DType::F32, {1}, &one);
  const std::vector<unsigned char> bytes = w.serialize();
  const std::string copy = as_view(bytes);
  const auto start = std::chrono::steady_clock::now();
  ModelFile file = ModelFile::parse(copy, "test.t2r");
  for (int i = 0; i < 5000; ++i) REQUIRE(file.find("t" + std::to_string(i)) != nullptr);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(file.metadata().get_int("k99999") == 99999);
  CHECK(file.find("t5000") == nullptr);
  CHECK(seconds < 5);
}

namespace {

std::vector<unsigned char> tiny_model(const std::function<void(ModelWriter&)>& change = {}) {
  bench::SyntheticConfig config;
  bench::synthetic_config("tiny", &config);
  ModelWriter w = bench::synthetic_model(config, true, DType::F32);
  if (change) change(w);
  return w.serialize();
}

std::string bind_error(const std::vector<unsigned char>& bytes) {
  const std::string copy = as_view(bytes);
  try {
    Model::from_file(ModelFile::parse(copy, "tiny.t2r"));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Renames a tensor in the table (to a name of the same length) and reseals the file.
std::vector<unsigned char> renamed(std::vector<unsigned char> bytes, const std::string& from, const std::string& to) {
  auto at = std::search(bytes.begin(), bytes.end(), from.begin(), from.end());
  REQUIRE(at != bytes.end());
  std::copy(to.begin(), to.end(), at);
  reseal(bytes);
  return bytes;
}

}  // namespace

TEST_CASE("the model binding refuses wrong hyperparameters and missing or misshapen tensors") {
  CHECK(bind_error(tiny_model()) == "");
  auto with = [](const char* key, Metadata::Value value) {
    return bind_error(tiny_model([&](ModelWriter& w) { w.metadata().set(key, value); }));
  };
  CHECK(with("model.dim", std::string("64")) == "model metadata: key 'model.dim' is not an int");
  CHECK(with("model.n_layers", int64_t(0)) == "model metadata: model.n_layers = 0 is outside 1..1024");
  CHECK(with("model.vocab_size", int64_t(1) << 40) ==
        "model metadata: model.vocab_size = 1099511627776 is outside 1..16777216");
  CHECK(with("model.norm", std::string("batchnorm")) ==
        "model metadata: model.norm = 'batchnorm' is not one of layernorm, rmsnorm");
  CHECK(with("model.norm_eps", std::numeric_limits<double>::quiet_NaN()) ==
        "model metadata: model.norm_eps must be a positive number");
  CHECK(with("attention.denominator_floor", -1.0) ==
        "model metadata: attention.denominator_floor must be a positive number");
  CHECK(with("model.n_kv_heads", int64_t(3)) == "model metadata: model.n_kv_heads = 3 is outside 1..2");
  CHECK(with("model.ffn_dim", int64_t(32)) ==
        "tiny.t2r: tensor 'layers.0.ffn.up.weight' has shape [64, 64], expected [32, 64]");
  CHECK(with("tokenizer.eos_id", int64_t(256)) ==
        "tiny.t2r: tokenizer.eos_id 256 is outside the vocabulary");
  CHECK(with("tokenizer.merges", std::vector<int32_t>{1}) == "tiny.t2r: tokenizer: merges has an odd number of ids");

  CHECK(bind_error(renamed(tiny_model(), "layers.0.attn.v.weight", "layers.0.attn.v.wEight")) ==
        "tiny.t2r: missing tensor 'layers.0.attn.v.weight'");
  CHECK(bind_error(renamed(tiny_model(), "layers.0.attn.feature_map.bias", "layers.0.attn.feature_map.bIas")) ==
        "tiny.t2r: missing tensor 'layers.0.attn.feature_map.bias'");
  const std::vector<float> values(32, 0.5f);
  CHECK(bind_error(tiny_model([&](ModelWriter& w) {
          w.add_tensor("layers.0.attn.v.bias", DType::F16, {32}, values.data());
        })) == "tiny.t2r: tensor 'layers.0.attn.v.bias' must be f32");
}
