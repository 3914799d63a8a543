// Packing translation checkpoints: what is refused, by name, when a file is missing, corrupt or
// does not match the checkpoint.
#include <doctest/doctest.h>

#include "reference.h"

#ifdef T2R_REFERENCE_MODELS

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "checkpoint_import.h"
#include "test_support.h"
#include "error.h"

using namespace t2r;
using namespace t2r::test;
namespace fs = std::filesystem;

namespace {

// A copy of mt-t2r's directory whose files a test may replace.
struct CheckpointCopy {
  fs::path dir = fs::temp_directory_path() / ("t2r-mt-copy-" + std::to_string(getpid()));
  CheckpointCopy() {
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const auto& entry : fs::directory_iterator(reference_dir("mt-t2r"))) {
      fs::copy_file(entry.path(), dir / entry.path().filename());
    }
  }
  ~CheckpointCopy() { fs::remove_all(dir); }
  void write(const std::string& name, const std::string& bytes) const {
    fs::remove(dir / name);
    std::ofstream(dir / name, std::ios::binary) << bytes;
  }
  std::string error() const { return import_error(dir.string()); }
};

}  // namespace

TEST_CASE("packing a translation checkpoint refuses bad dictionaries, SentencePiece models and missing files") {
  const CheckpointCopy copy;
  CHECK(copy.error().empty());

  copy.write("dict.en.txt", "▁the 5\nno-count-here\n");
  CHECK(copy.error().find("dict.en.txt: line 2 is not \"SYMBOL COUNT\"") != std::string::npos);
  copy.write("dict.en.txt", "▁the 5\n▁the 4\n");
  CHECK(copy.error().find("dict.en.txt: line 2: \"▁the\" repeats an earlier symbol") != std::string::npos);
  copy.write("dict.en.txt", "▁the 5\n");
  CHECK(copy.error().find("dict.en.txt: 5 symbols but the decoder embedding has 4008 rows") != std::string::npos);
  fs::remove(copy.dir / "dict.en.txt");
  CHECK(copy.error().find("dict.en.txt: missing (a fairseq translation model needs it)") != std::string::npos);
  fs::copy_file(fs::path(reference_dir("mt-t2r")) / "dict.en.txt", copy.dir / "dict.en.txt");

  copy.write("sentencepiece.bpe.model", "\x0a\x05garbage");
  const std::string spm = copy.error();
  CHECK(spm.find("sentencepiece.bpe.model: ") != std::string::npos);
  CHECK(spm.find("SentencePiece 0: wire type 7") != std::string::npos);  // the protobuf reader names the field
  fs::remove(copy.dir / "sentencepiece.bpe.model");
  CHECK(copy.error().find("sentencepiece.bpe.model: missing") != std::string::npos);
  fs::copy_file(fs::path(reference_dir("mt-t2r")) / "sentencepiece.bpe.model", copy.dir / "sentencepiece.bpe.model");

  // A truncated checkpoint: the zip reader names it.
  std::ifstream in(fs::path(reference_dir("mt-t2r")) / "checkpoint.pt", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  copy.write("checkpoint.pt", bytes.substr(0, bytes.size() / 2));
  CHECK(copy.error().find("checkpoint.pt") != std::string::npos);
}

#endif
