// Tests of the torch checkpoint readers: zip archive, unpickler, and the checkpoint on top.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "error.h"
#include "pickle.h"
#include "torch_checkpoint.h"
#include "torch_checkpoint_builder.h"
#include "zip_archive.h"

using t2r::ZipArchive;
using t2r::pickle::Value;
using Kind = t2r::pickle::Value::Kind;
using namespace t2r::test;

namespace {

std::string from_hex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += char(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  return out;
}

std::string zip_error(std::string_view bytes) {
  try {
    ZipArchive z(bytes, "t.zip");
  } catch (const t2r::Error& e) {
    return e.what();
  }
  return "";
}

std::string unpickle_error(const std::string& bytes) {
  try {
    t2r::pickle::unpickle(bytes);
  } catch (const t2r::Error& e) {
    return e.what();
  }
  return "";
}

// A file under the system temp directory, removed at scope exit.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& bytes) {
    static int counter = 0;
    path =
        (std::filesystem::temp_directory_path() /
         ("t2r_readers_" + std::to_string(std::random_device{}()) + "_" + std::to_string(counter++) + ".pt"))
            .string();
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  }
  ~TempFile() { std::filesystem::remove(path); }
};

std::string checkpoint_error(const std::string& zip_bytes) {
  try {
    t2r::parse_torch_checkpoint(zip_bytes, "FILE");
  } catch (const t2r::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("zip: crc32") {
  CHECK(t2r::crc32("") == 0);
  CHECK(t2r::crc32("123456789") == 0xCBF43926u);
  CHECK(t2r::crc32("The quick brown fox jumps over the lazy dog") == 0x414FA339u);
}

TEST_CASE("zip: stored entries in plain and ZIP64 archives") {
  std::vector<Entry> entries = {
      {"a/data.pkl", "hello"}, {"a/data/0", std::string(1000, 'x')}, {"a/empty", ""}};
  for (bool zip64 : {false, true}) {
    std::string bytes = build_zip(entries, zip64, zip64 ? "" : "a comment PK\x05\x06 inside");
    ZipArchive z(bytes, "t.zip");
    CHECK(z.names() == std::vector<std::string>{"a/data.pkl", "a/data/0", "a/empty"});
    CHECK(z.read("a/data.pkl") == "hello");
    CHECK(z.read("a/data/0") == std::string(1000, 'x'));
    CHECK(z.read("a/empty").empty());
    CHECK(z.contains("a/empty"));
    CHECK_FALSE(z.contains("a/other"));
    CHECK_THROWS_WITH_AS(z.read("a/other"), "zip 't.zip': no entry 'a/other'", t2r::Error);
  }
}

TEST_CASE("zip: malformed archives are refused") {
  CHECK(zip_error("") == "zip 't.zip': too small to be a zip archive");
  CHECK(zip_error(std::string(100, 'x')) ==
        "zip 't.zip': no end of central directory record (not a zip file?)");

  std::string good = build_zip({{"d/data.pkl", "abc"}, {"d/x", "0123456789"}}, false);
  for (size_t n = 0; n < good.size(); ++n) CHECK(!zip_error(good.substr(0, n)).empty());
  std::string good64 = build_zip({{"d/data.pkl", "abc"}, {"d/x", "0123456789"}}, true);
  for (size_t n = 0; n < good64.size(); ++n) CHECK(!zip_error(good64.substr(0, n)).empty());

  std::string bad_local = good;
  bad_local[0] = 'X';
  CHECK(zip_error(bad_local) == "zip 't.zip' entry 'd/data.pkl': bad local header offset");

  std::string bad_central = good;
  bad_central[bad_central.find("PK\x01\x02")] = 'X';
  CHECK(zip_error(bad_central) == "zip 't.zip': bad central directory entry signature at entry 0");

  std::string bad_offset = good;
  bad_offset[bad_offset.size() - 6] = char(0x7F);  // central directory offset
  CHECK(zip_error(bad_offset) == "zip 't.zip': central directory lies outside the archive");

  CHECK(zip_error(build_zip({{"a", "1"}, {"a", "2"}}, false)) == "zip 't.zip': duplicate entry 'a'");

  std::string zip = build_zip({{"d/x", "0123456789"}, {"d/c", "zzz", 8}}, false);
  ZipArchive z(zip, "t.zip");
  CHECK_THROWS_WITH_AS(z.read("d/c"),
                       "zip 't.zip': zip entry d/c is compressed (method 8); torch checkpoints are stored "
                       "uncompressed",
                       t2r::Error);
  std::string corrupt = zip;
  corrupt[corrupt.find("0123456789")] = '9';
  ZipArchive zc(corrupt, "t.zip");
  CHECK_THROWS_WITH_AS(zc.read("d/x"), "zip 't.zip': entry 'd/x' fails its CRC-32 check", t2r::Error);
  CHECK(zc.read("d/x", false) == "9123456789");
}

TEST_CASE("pickle: values from a protocol 4 stream") {
  // pickle.dumps({'a': [1, -2, 3.5, None, True, False, 'é😀', b'xy', (1, 2), 2**40, -2**63, 300,
  //               70000, -1], 'b': {}, (1,): 't'}, protocol=4)
  std::string bytes = from_hex(
      "80049561000000000000007d94288c0161945d94284b014afeffffff47400c0000000000004e88898c06c3a9f09f98"
      "809443027879944b014b0286948a060000000000018a0800000000000000804d2c014a701101004affffffff658c01"
      "62947d944b0185948c017494752e");
  t2r::pickle::Document doc = t2r::pickle::unpickle(bytes);
  const Value& root = doc.root();
  REQUIRE(root.kind == Kind::Dict);
  REQUIRE(root.pairs.size() == 3);
  const Value* a = root.get("a");
  REQUIRE(a);
  REQUIRE(a->kind == Kind::List);
  REQUIRE(a->items.size() == 14);
  CHECK(a->items[0]->integer == 1);
  CHECK(a->items[1]->integer == -2);
  CHECK(a->items[2]->real == 3.5);
  CHECK(a->items[3]->kind == Kind::None);
  CHECK(a->items[4]->boolean);
  CHECK_FALSE(a->items[5]->boolean);
  CHECK(a->items[6]->text == "\xC3\xA9\xF0\x9F\x98\x80");
  CHECK(a->items[7]->kind == Kind::Bytes);
  CHECK(a->items[7]->text == "xy");
  CHECK(a->items[8]->kind == Kind::Tuple);
  CHECK(a->items[8]->items[1]->integer == 2);
  CHECK(a->items[9]->integer == (int64_t(1) << 40));
  CHECK(a->items[10]->integer == INT64_MIN);
  CHECK(a->items[11]->integer == 300);
  CHECK(a->items[12]->integer == 70000);
  CHECK(a->items[13]->integer == -1);
  CHECK(root.get("b")->kind == Kind::Dict);
  CHECK(root.pairs[2].first->kind == Kind::Tuple);
  CHECK(root.pairs[2].second->text == "t");
  CHECK(root.get("missing") == nullptr);

  for (size_t n = 0; n < bytes.size(); ++n) CHECK(!unpickle_error(bytes.substr(0, n)).empty());
}

TEST_CASE("pickle: a memo reference shares the value") {
  std::string bytes = raw("\x80\x02]q\x00(") + pint(1) + raw("e0(h\x00h\x00t.");
  t2r::pickle::Document doc = t2r::pickle::unpickle(bytes);
  REQUIRE(doc.root().items.size() == 2);
  CHECK(doc.root().items[0] == doc.root().items[1]);
  CHECK(doc.root().items[0]->items[0]->integer == 1);
}

TEST_CASE("pickle: code execution is refused") {
  // pickle.dumps of a class whose __reduce__ returns (os.system, ('ls',)), protocols 2 and 4.
  CHECK(unpickle_error(raw("\x80\x02"
                           "cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.")) ==
        "pickle: refusing global 'os system' at offset 2");
  CHECK(unpickle_error(std::string("\x80\x04\x8c\x05posix\x94\x8c\x06system\x94\x93\x94.")) ==
        "pickle: refusing global 'posix system' at offset 19");
  CHECK(unpickle_error(std::string("cbuiltins\neval\n.")) ==
        "pickle: refusing global 'builtins eval' at offset 0");
  // Protocol 2 encodes bytes with a call to _codecs.encode.
  CHECK(unpickle_error(std::string("\x80\x02"
                                   "c_codecs\nencode\nq\x04.")) ==
        "pickle: refusing global '_codecs encode' at offset 2");
  // Allowed names that are not callable as such.
  CHECK(unpickle_error("ctorch\nFloatStorage\n)R.") ==
        "pickle: cannot call 'torch FloatStorage' at offset 21");
  CHECK(unpickle_error("ccollections\nOrderedDict\n)\x81.") ==
        "pickle: cannot construct 'collections OrderedDict' at offset 26");
  CHECK(unpickle_error("cargparse\nNamespace\n" + pint(1) + "\x85R.") ==
        "pickle: cannot call 'argparse Namespace' at offset 26");
  CHECK(unpickle_error("]N\x85"
                       "b.") == "pickle: cannot BUILD a list at offset 3");
  CHECK(unpickle_error("(" + pstr("storage") + pstr("x") + pstr("0") + pstr("cpu") + pint(1) + "tQ.") ==
        "pickle: persistent id does not name a storage type at offset 39");
  CHECK(unpickle_error(raw("(X\x03\x00\x00\x00"
                           "filtQ.")) == "pickle: unsupported persistent id at offset 10");
}

TEST_CASE("pickle: malformed and hostile streams are refused") {
  CHECK(unpickle_error("") == "pickle: data ends without a STOP opcode at offset 0");
  CHECK(unpickle_error("\x80\x02N") == "pickle: data ends without a STOP opcode at offset 3");
  CHECK(unpickle_error(".") == "pickle: STOP with 0 values on the stack, expected one at offset 0");
  CHECK(unpickle_error("NN.") == "pickle: STOP with 2 values on the stack, expected one at offset 2");
  CHECK(unpickle_error("N.N") == "pickle: data after STOP at offset 1");
  CHECK(unpickle_error("a") == "pickle: stack underflow at offset 0");
  CHECK(unpickle_error("](a.") == "pickle: stack underflow at offset 2");
  CHECK(unpickle_error("t") == "pickle: no MARK to pop to at offset 0");
  CHECK(unpickle_error("h\x05.") == "pickle: memo key 5 not found at offset 0");
  CHECK(unpickle_error("I1\n.") == "pickle: unsupported opcode 0x49 at offset 0");
  CHECK(unpickle_error(std::string("\x8f.")) == "pickle: unsupported opcode 0x8f at offset 0");  // EMPTY_SET
  CHECK(unpickle_error(std::string("\x80\x06N.")) == "pickle: unsupported pickle protocol at offset 0");
  CHECK(unpickle_error(std::string("X\xff\xff\xff\x7f"
                                   "abc.")) == "pickle: truncated data at offset 0");
  CHECK(unpickle_error(std::string("\x8d\xff\xff\xff\xff\xff\xff\xff\xff"
                                   "abc.")) == "pickle: truncated data at offset 0");
  CHECK(unpickle_error(raw("\x95\xff\x00\x00\x00\x00\x00\x00\x00N.")) ==
        "pickle: frame extends beyond the data at offset 0");
  CHECK(unpickle_error(std::string("\x8a\x09") + std::string(9, '\x01') + ".") ==
        "pickle: integer does not fit in int64 at offset 0");
  CHECK(unpickle_error(raw("X\x02\x00\x00\x00\xc3\x28.")) == "pickle: invalid UTF-8 in a string at offset 0");
  CHECK(unpickle_error(raw("X\x03\x00\x00\x00\xed\xa0\x80.")) ==
        "pickle: invalid UTF-8 in a string at offset 0");
  CHECK(unpickle_error("}(N.") == "pickle: STOP with 2 values on the stack, expected one at offset 3");
  CHECK(unpickle_error("}(Nu.") == "pickle: SETITEMS with an odd number of values at offset 3");
  CHECK(unpickle_error("N)R.") == "pickle: REDUCE callable has type None, expected global at offset 2");
  // A list appended to itself would be a cycle.
  CHECK(unpickle_error(raw("]q\x00h\x00"
                           "a.")) == "pickle: modifying a list already in use at offset 5");
  // So would modifying a value after it was placed in another.
  CHECK(unpickle_error(raw("]q\x00h\x00\x85h\x00N"
                           "a.")) == "pickle: modifying a list already in use at offset 9");

  // Doubling sharing ("billion laughs"): shared, not copied, and refused once the expanded tree
  // exceeds the limit.
  std::string laughs =
      raw("]q\x00"
          "0");
  for (int i = 0; i < 40; ++i)
    laughs +=
        raw("h\x00h\x00\x86q\x00"
            "0");
  laughs += raw("h\x00.");
  CHECK(unpickle_error(laughs).find("pickle: value expands to more than 4194304 values") == 0);

  std::string deep = "N" + std::string(600, '\x85') + ".";
  CHECK(unpickle_error(deep) == "pickle: values nested deeper than 512 at offset 512");
  CHECK(unpickle_error(std::string(2000000, '(')) == "pickle: too many MARKs at offset 1048576");
  CHECK(unpickle_error(std::string(2000000, 'N')) == "pickle: more than 1048576 values at offset 1048576");
}

TEST_CASE("torch: crafted checkpoint") {
  std::string model = pstr("w") + ptensor(pstorage("0", "FloatStorage", 6), 0, {2, 3}, {3, 1}) + pstr("wt") +
                      ptensor(pstorage("0", "FloatStorage", 6), 0, {3, 2}, {1, 3}) + pstr("tail") +
                      ptensor(pstorage("0", "FloatStorage", 6), 1, {2}, {3}) + pstr("h") +
                      "ctorch._utils\n_rebuild_parameter\n(" +
                      ptensor(pstorage("1", "HalfStorage", 2), 0, {2}, {1}) +
                      "\x88"
                      "ccollections\nOrderedDict\n)RtR" +
                      pstr("scalar") + ptensor(pstorage("0", "FloatStorage", 6), 5, {}, {});
  TempFile file(checkpoint_zip(checkpoint_pickle(kArgs, model)));
  t2r::TorchCheckpoint ck = t2r::read_torch_checkpoint(file.path);

  const t2r::json::Value& args = ck.args;
  CHECK(args.at("layers").as_int() == 6);
  CHECK(args.at("name").as_string() == "mlp");
  CHECK(args.at("rate").as_number() == 0.25);
  CHECK(args.at("flag").as_bool());
  CHECK(args.at("none").is_null());
  CHECK(args.at("list").as_array().size() == 2);
  CHECK(args.at("list").as_array()[1].as_int() == 2);
  CHECK(args.at("tuple").as_array()[1].as_string() == "x");
  CHECK(args.at("nested").at("k").as_int() == 1);
  CHECK(args.find("blob") == nullptr);
  CHECK(args.as_object().size() == 8);

  REQUIRE(ck.state_dict.size() == 5);
  const t2r::TorchTensor& w = ck.state_dict[0];
  CHECK(w.name == "w");
  CHECK(w.dtype == "F32");
  CHECK(w.shape == std::vector<int64_t>{2, 3});
  CHECK(w.stride == std::vector<int64_t>{3, 1});
  CHECK(w.storage_bytes.size() == 24);
  CHECK(t2r::torch_tensor_to_f32(w) == std::vector<float>{0, 1, 2, 3, 4, 5});
  CHECK(t2r::torch_tensor_to_f32(ck.state_dict[1]) == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK(ck.state_dict[1].storage_bytes.data() == w.storage_bytes.data());
  CHECK(t2r::torch_tensor_to_f32(ck.state_dict[2]) == std::vector<float>{1, 4});
  CHECK(ck.state_dict[3].dtype == "F16");
  CHECK(t2r::torch_tensor_to_f32(ck.state_dict[3]) == std::vector<float>{1, -2});
  CHECK(t2r::torch_tensor_to_f32(ck.state_dict[4]) == std::vector<float>{5});
}

TEST_CASE("torch: malformed checkpoints are refused") {
  const std::string w = pstr("w") + ptensor(pstorage("0", "FloatStorage", 6), 0, {2, 3}, {3, 1});
  CHECK(checkpoint_error(checkpoint_zip(checkpoint_pickle("N", w))) ==
        "torch checkpoint 'FILE': no 'args' (newer fairseq keeps its configuration in 'cfg', which is not "
        "supported yet)");
  CHECK(checkpoint_error(checkpoint_zip(checkpoint_pickle(pint(1), w))) ==
        "torch checkpoint 'FILE': 'args' has type int, not Namespace");
  CHECK(checkpoint_error(checkpoint_zip(checkpoint_pickle(kArgs, pstr("w") + pint(1)))) ==
        "torch checkpoint 'FILE': model entry 'w' has type int, not tensor");
  CHECK(checkpoint_error(checkpoint_zip(checkpoint_pickle(
            kArgs, pstr("w") + ptensor(pstorage("0", "FloatStorage", 6), 1, {2, 3}, {3, 1})))) ==
        "torch checkpoint 'FILE': tensor 'w': reaches beyond its storage of 6 elements");
  CHECK(checkpoint_error(checkpoint_zip(checkpoint_pickle(
            kArgs, pstr("w") + ptensor(pstorage("0", "FloatStorage", 6), 0, {4, 3}, {0, 1})))) ==
        "torch checkpoint 'FILE': tensor 'w': has more elements than its storage of 6");
  CHECK(checkpoint_error(checkpoint_zip(
            checkpoint_pickle(kArgs, pstr("w") + ptensor(pstorage("0", "FloatStorage", 7), 0, {2}, {1})))) ==
        "torch checkpoint 'FILE': tensor 'w': storage 0 holds 24 bytes, expected 7 elements of 4");
  CHECK(checkpoint_error(checkpoint_zip(
            checkpoint_pickle(kArgs, pstr("w") + ptensor(pstorage("9", "FloatStorage", 6), 0, {2}, {1})))) ==
        "torch checkpoint 'FILE': zip 'FILE': no entry 'archive/data/9'");
  CHECK(checkpoint_error(checkpoint_zip(checkpoint_pickle(kArgs, w + w))) ==
        "torch checkpoint 'FILE': duplicate model entry 'w'");
  CHECK(checkpoint_error(checkpoint_zip(checkpoint_pickle(kArgs, w), {{"other/data.pkl", ""}})) ==
        "torch checkpoint 'FILE': expected exactly one <dir>/data.pkl in the archive, found 2");
  CHECK(checkpoint_error(build_zip(
            {{"archive/data.pkl", checkpoint_pickle(kArgs, w)}, {"archive/byteorder", "big"}}, false)) ==
        "torch checkpoint 'FILE': byteorder is not 'little'");
  CHECK(checkpoint_error(checkpoint_zip(raw("cos\nsystem\n(X\x02\x00\x00\x00lstR."))) ==
        "torch checkpoint 'FILE': pickle: refusing global 'os system' at offset 0");
  CHECK_THROWS_WITH_AS(t2r::read_torch_checkpoint("/nonexistent.pt"),
                       "cannot open '/nonexistent.pt': No such file or directory", t2r::Error);
}

TEST_CASE("torch: gather checks every view") {
  std::string f64;
  for (double d : {1.5, -2.25}) {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    put(f64, bits, 8);
  }
  t2r::TorchTensor t{"t", "F64", {2}, {1}, 0, f64};
  CHECK(t2r::torch_tensor_to_f32(t) == std::vector<float>{1.5f, -2.25f});
  std::string bf = std::string("\x80\x3f\x40\xc0", 4);  // BF16 1.0, -3.0
  t2r::TorchTensor b{"b", "BF16", {2, 1}, {1, 1}, 0, bf};
  CHECK(t2r::torch_tensor_to_f32(b) == std::vector<float>{1.0f, -3.0f});
  b.shape = {0, 7};
  CHECK(t2r::torch_tensor_to_f32(b).empty());
  b.shape = {3};
  b.stride = {1};
  CHECK_THROWS_WITH_AS(t2r::torch_tensor_to_f32(b), "tensor 'b': reaches beyond its storage of 2 elements",
                       t2r::Error);
  b.shape = {int64_t(1) << 62, 2};
  b.stride = {0, 1};
  CHECK_THROWS_WITH_AS(t2r::torch_tensor_to_f32(b), "tensor 'b': has more elements than its storage of 2",
                       t2r::Error);
  b.stride = {int64_t(1) << 62, 1};
  CHECK_THROWS_WITH_AS(t2r::torch_tensor_to_f32(b), "tensor 'b': reaches beyond its storage of 2 elements",
                       t2r::Error);
  b.shape = {1};
  b.stride = {1, 1};
  CHECK_THROWS_WITH_AS(t2r::torch_tensor_to_f32(b), "tensor 'b': shape and stride differ in length",
                       t2r::Error);
  const std::string i64(8, '\0');
  t2r::TorchTensor i{"i", "I64", {1}, {1}, 0, i64};
  CHECK_THROWS_WITH_AS(t2r::torch_tensor_to_f32(i),
                       "tensor 'i' has dtype I64; only float tensors convert to f32", t2r::Error);
}

#ifdef T2R_REFERENCE_MODELS
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

const t2r::TorchTensor& tensor(const t2r::TorchCheckpoint& ck, const std::string& name) {
  for (const auto& t : ck.state_dict)
    if (t.name == name) return t;
  FAIL("no tensor " << name);
  throw;
}

}  // namespace

TEST_CASE("torch: real fairseq checkpoints") {
  const std::string dir = std::string(T2R_REFERENCE_MODELS) + "/fairseq-";
  t2r::TorchCheckpoint ck = t2r::read_torch_checkpoint(dir + "t2r/checkpoint.pt");
  CHECK(ck.args.at("decoder_layers").as_int() == 6);
  CHECK(ck.args.at("decoder_embed_dim").as_int() == 256);
  CHECK(ck.args.at("decoder_attention_heads").as_int() == 4);
  CHECK(ck.args.at("causal_proj_dim").as_int() == 32);
  CHECK(ck.args.at("random_feature").as_string() == "mlp");
  CHECK(ck.args.at("arch").as_string() == "transformer_lm");
  CHECK(ck.args.at("dropout").as_number() == 0.1);
  CHECK(ck.args.at("decoder_normalize_before").as_bool());
  CHECK(ck.args.at("adaptive_softmax_cutoff").is_null());
  CHECK(ck.args.at("lr").as_array().at(0).as_number() == 0.0005);
  CHECK(ck.args.at("attn_act").as_string() == "relu");  // a memo reference
  CHECK(ck.args.as_object().size() == 41);

  REQUIRE(ck.state_dict.size() == 126);
  CHECK(ck.state_dict[0].name == "decoder.version");
  CHECK(ck.state_dict.back().name == "decoder.output_projection.weight");
  // Expected values read with python zipfile + struct from the raw storages.
  const t2r::TorchTensor& emb = tensor(ck, "decoder.embed_tokens.weight");
  CHECK(emb.dtype == "F16");
  CHECK(emb.shape == std::vector<int64_t>{8200, 256});
  CHECK(emb.stride == std::vector<int64_t>{256, 1});
  CHECK(emb.storage_offset == 0);
  std::vector<float> e = t2r::torch_tensor_to_f32(emb);
  REQUIRE(e.size() == 8200u * 256);
  CHECK(e[0] == 0.08355712890625f);
  CHECK(e[1] == -0.055328369140625f);
  CHECK(e[2] == -0.033843994140625f);
  CHECK(e[256 * 1234 + 56] == 0.041107177734375f);
  CHECK(e.back() == -0.0004723072052001953f);
  CHECK(t2r::torch_tensor_to_f32(tensor(ck, "decoder.version")) == std::vector<float>{3});
  CHECK(t2r::torch_tensor_to_f32(tensor(ck, "decoder.layers.0.self_attn.tau")) == std::vector<float>{1});
  std::vector<float> fc3b = t2r::torch_tensor_to_f32(tensor(ck, "decoder.layers.5.fc3.bias"));
  REQUIRE(fc3b.size() == 128);
  CHECK(fc3b[0] == 0.044708251953125f);
  CHECK(fc3b[1] == -0.0318603515625f);
  CHECK(fc3b[100] == -0.0509033203125f);
  std::vector<float> ln = t2r::torch_tensor_to_f32(tensor(ck, "decoder.layer_norm.weight"));
  CHECK(ln[0] == 2.74609375f);
  CHECK(ln[255] == 2.3046875f);

  t2r::TorchCheckpoint elu = t2r::read_torch_checkpoint(dir + "elu/checkpoint.pt");
  CHECK(elu.args.at("random_feature").as_string() == "elu");
  CHECK(elu.state_dict.size() == 102);
  t2r::TorchCheckpoint softmax = t2r::read_torch_checkpoint(dir + "softmax/checkpoint.pt");
  CHECK(softmax.args.find("random_feature") == nullptr);
  CHECK(softmax.state_dict.size() == 102);
}

TEST_CASE("torch: damaged copies of a real checkpoint give errors") {
  const std::string bytes = read_all(std::string(T2R_REFERENCE_MODELS) + "/fairseq-t2r/checkpoint.pt");
  REQUIRE(bytes.size() > 1000000);

  // Truncated archives: no end record survives, whatever the cut.
  for (size_t i = 0; i < 100; ++i) {
    size_t n = bytes.size() * i / 100 + i;
    CHECK(!zip_error(std::string_view(bytes).substr(0, n)).empty());
  }
  for (size_t cut : {size_t(0), size_t(22), bytes.size() / 2, bytes.size() - 23, bytes.size() - 1})
    CHECK(!checkpoint_error(bytes.substr(0, cut)).empty());

  // Every byte of the archive tail (directory and end records) changed in turn: either still a
  // readable archive, or an error; never a crash.
  std::string damaged = bytes;
  for (size_t pos = bytes.size() - 20000; pos < bytes.size(); pos += 7) {
    damaged[pos] = char(damaged[pos] ^ 0x5A);
    try {
      ZipArchive z(damaged, "damaged");
      for (const std::string& name : z.names()) z.read(name, false);
    } catch (const t2r::Error&) {
    }
    damaged[pos] = bytes[pos];
  }
  std::string flipped = bytes;
  flipped[5000] = char(flipped[5000] ^ 1);  // inside data.pkl
  CHECK(checkpoint_error(flipped) ==
        "torch checkpoint 'FILE': zip 'FILE': entry 'checkpoint/data.pkl' fails its CRC-32 check");

  // The pickle itself, truncated anywhere and with random bytes changed.
  ZipArchive zip(bytes, "real");
  const std::string pkl(zip.read("checkpoint/data.pkl"));
  for (size_t n = 0; n < pkl.size(); n += 31) CHECK(!unpickle_error(pkl.substr(0, n)).empty());
  std::mt19937 rng(12345);
  for (int i = 0; i < 500; ++i) {
    std::string changed = pkl;
    for (int k = 0; k < 3; ++k) changed[rng() % changed.size()] = char(rng());
    try {
      t2r::pickle::unpickle(changed);
    } catch (const t2r::Error&) {
    }
  }
}
#endif
