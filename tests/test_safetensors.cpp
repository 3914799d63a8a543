#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "error.h"
#include "safetensors.h"

using t2r::SafetensorsFile;

namespace {

// A safetensors file: the length prefix, `header` verbatim, then `data`.
std::string make_file(const std::string& header, const std::string& data) {
  std::string out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out += char((n >> (8 * i)) & 0xFF);
  return out + header + data;
}

std::string open_error(const std::string& bytes) {
  try {
    SafetensorsFile f(bytes, "t.safetensors");
  } catch (const t2r::Error& e) {
    return e.what();
  }
  return "";
}

// One tensor named "x" with the given description and `data_size` bytes of data.
std::string one_tensor_error(const std::string& desc, size_t data_size) {
  return open_error(make_file("{\"x\":" + desc + "}", std::string(data_size, '\0')));
}

}  // namespace

TEST_CASE("safetensors: valid crafted file") {
  std::string data;
  auto put = [&](std::initializer_list<int> bytes) {
    for (int b : bytes) data += char(b);
  };
  put({0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0});  // F32 1.0, -2.0
  put({0x00, 0x3C, 0x00, 0xB8});                          // F16 1.0, -0.5
  put({0x80, 0x3F, 0x40, 0x40});                          // BF16 1.0, 3.0
  put({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,    // I64 -1, 7
       0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00});
  put({0x2A, 0x00, 0x00, 0x00});  // I32 42
  std::string header = R"({"__metadata__":{"text":"hi","format":"pt"},
    "f32":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},
    "f16":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},
    "bf16":{"dtype":"BF16","shape":[2],"data_offsets":[12,16]},
    "i64":{"dtype":"I64","shape":[2],"data_offsets":[16,32]},
    "i32":{"dtype":"I32","shape":[],"data_offsets":[32,36]},
    "empty":{"dtype":"F32","shape":[0,5],"data_offsets":[36,36]}}   )";
  std::string bytes = make_file(header, data);
  SafetensorsFile f(bytes, "mem");
  CHECK(f.names() == std::vector<std::string>{"f32", "f16", "bf16", "i64", "i32", "empty"});
  CHECK(f.metadata().at("text") == "hi");
  CHECK(f.metadata().size() == 2);
  CHECK(f.at("f32").shape == std::vector<int64_t>{1, 2});
  CHECK(t2r::tensor_to_f32(f.at("f32")) == std::vector<float>{1.0f, -2.0f});
  CHECK(t2r::tensor_to_f32(f.at("f16")) == std::vector<float>{1.0f, -0.5f});
  CHECK(t2r::tensor_to_f32(f.at("bf16")) == std::vector<float>{1.0f, 3.0f});
  CHECK(t2r::tensor_to_i32(f.at("i64")) == std::vector<int32_t>{-1, 7});
  CHECK(t2r::tensor_to_i32(f.at("i32")) == std::vector<int32_t>{42});
  CHECK(f.at("i32").shape.empty());
  CHECK(t2r::tensor_to_f32(f.at("empty")).empty());
  CHECK(f.find("nope") == nullptr);
  CHECK_THROWS_WITH_AS(f.at("nope"), "safetensors 'mem': no tensor 'nope'", t2r::Error);
  CHECK_THROWS_WITH_AS(t2r::tensor_to_f32(f.at("i32")),
                       "tensor 'i32' has dtype I32; only F32, F16 and BF16 convert to f32", t2r::Error);
  CHECK_THROWS_WITH_AS(t2r::tensor_to_i32(f.at("f32")),
                       "tensor 'f32' has dtype F32; only I32 and I64 convert to int32", t2r::Error);
}

TEST_CASE("safetensors: I64 beyond int32 is refused") {
  std::string data = {0, 0, 0, char(0x80), 0, 0, 0, 0};  // 2^31
  std::string bytes = make_file(R"({"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", data);
  SafetensorsFile f(bytes, "mem");
  CHECK_THROWS_WITH_AS(t2r::tensor_to_i32(f.at("x")),
                       "tensor 'x' element 0 = 2147483648 does not fit in int32", t2r::Error);
}

TEST_CASE("safetensors: corrupt headers are refused") {
  const std::string p = "safetensors 't.safetensors': ";
  CHECK(open_error("") == p + "file of 0 bytes is too short for the header length");
  CHECK(open_error("1234567") == p + "file of 7 bytes is too short for the header length");
  std::string beyond = make_file("{}", "");
  beyond[0] = 3;
  CHECK(open_error(beyond) == p + "header length 3 is beyond the file size 10");
  std::string huge(16, '\xFF');
  CHECK(open_error(huge) == p + "header length 18446744073709551615 exceeds 100 MB");
  CHECK(open_error(make_file("{", "")) ==
        p + "header: JSON: unexpected end of input in object at line 1, column 2");
  CHECK(open_error(make_file("[]", "")) == p + "header is not a JSON object");
  CHECK(open_error(make_file(R"({"__metadata__":{"a":1}})", "")) == p + "__metadata__ 'a' is not a string");
  CHECK(open_error(make_file(R"({"__metadata__":[]})", "")) == p + "__metadata__ is not an object");

  const std::string x = p + "tensor 'x': ";
  CHECK(one_tensor_error(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 4) ==
        x + "data_offsets end 8 beyond the data size 4");
  CHECK(one_tensor_error(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})", 8) ==
        x + "data_offsets begin 8 > end 0");
  CHECK(one_tensor_error(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})", 8) ==
        x + "holds 8 bytes but its dtype and shape need 12");
  CHECK(one_tensor_error(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})", 8) ==
        x + "shape overflows the byte size");
  CHECK(one_tensor_error(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})", 8) ==
        x + "a dimension is negative");
  CHECK(one_tensor_error(R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,8]})", 8) ==
        x + "JSON: expected an integer, got 1.500000");
  CHECK(one_tensor_error(R"({"dtype":"Q4","shape":[2],"data_offsets":[0,8]})", 8) ==
        x + "unknown dtype 'Q4'");
  CHECK(one_tensor_error(R"({"dtype":"F32","shape":[2],"data_offsets":[0]})", 8) ==
        x + "data_offsets must hold [begin, end]");
  CHECK(one_tensor_error(R"({"dtype":"F32","shape":[2]})", 8) == x + "JSON: missing key 'data_offsets'");
  CHECK(one_tensor_error(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1})", 8) ==
        x + "unexpected key 'x'");
  CHECK(one_tensor_error(R"(7)", 8) == x + "JSON: expected object, got number");

  CHECK(open_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                                 "b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                             std::string(12, '\0'))) == p + "tensors 'a' and 'b' overlap");
  CHECK(open_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},
                                 "b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                             std::string(8, '\0'))) == p + "tensors 'b' and 'a' overlap");
  CHECK(open_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},
                                 "a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                             std::string(8, '\0'))) == p + "duplicate tensor 'a'");
}

TEST_CASE("safetensors: missing file names the path") {
  CHECK_THROWS_WITH_AS(SafetensorsFile("/nonexistent/x.safetensors"),
                       "cannot open '/nonexistent/x.safetensors': No such file or directory", t2r::Error);
}

#ifdef T2R_REFERENCE_MODELS
TEST_CASE("safetensors: real llama checkpoint and reference") {
  const std::string dir = std::string(T2R_REFERENCE_MODELS) + "/llama-t2r/";
  SafetensorsFile model(dir + "model.safetensors");
  CHECK(model.names().size() == 68);
  CHECK(model.names()[0] == "model.embed_tokens.weight");
  CHECK(model.metadata().at("format") == "pt");
  const auto& emb = model.at("model.embed_tokens.weight");
  CHECK(emb.dtype == "BF16");
  CHECK(emb.shape == std::vector<int64_t>{8192, 256});
  std::vector<float> e = t2r::tensor_to_f32(emb);
  REQUIRE(e.size() == 8192u * 256);
  // Expected values computed with python struct from the raw bytes.
  CHECK(e[0] == 0.033447265625f);
  CHECK(e[1] == -0.01165771484375f);
  CHECK(e[256 * 100 + 7] == -0.048828125f);
  CHECK(e.back() == 0.00616455078125f);

  SafetensorsFile ref(dir + "reference.safetensors");
  CHECK(ref.names() == std::vector<std::string>{"input_ids", "logits", "valid_ids"});
  CHECK(ref.metadata().at("text").rfind("In the beginning God created", 0) == 0);
  std::vector<int32_t> ids = t2r::tensor_to_i32(ref.at("input_ids"));
  REQUIRE(ids.size() == 59);
  CHECK(std::vector<int32_t>(ids.begin(), ids.begin() + 8) ==
        std::vector<int32_t>{1189, 262, 3124, 697, 1824, 262, 2583, 293});
  CHECK(ref.at("logits").shape == std::vector<int64_t>{59, 8192});
  std::vector<float> logits = t2r::tensor_to_f32(ref.at("logits"));
  CHECK(logits[0] == -0.480619877576828f);
  CHECK(logits[1] == -3.454087734222412f);
  CHECK(logits[2] == 1.1021554470062256f);
  CHECK_THROWS_WITH_AS(ref.at("missing"),
                       ("safetensors '" + dir + "reference.safetensors': no tensor 'missing'").c_str(),
                       t2r::Error);
}
#endif
