// Crafting torch.save checkpoints byte by byte: stored zip archives (optionally ZIP64) and
// protocol 2 pickle opcodes. Used by the reader tests and by the fuzzers' seed generator.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace t2r::test {

// Appends the low `bytes` bytes of v, little-endian.
void put(std::string& s, uint64_t v, int bytes);

// A string literal with its embedded NULs.
template <size_t N>
std::string raw(const char (&s)[N]) {
  return std::string(s, N - 1);
}

struct Entry {
  std::string name, data;
  uint16_t method = 0;
};

// A zip archive as torch.save writes one: stored entries, optionally with ZIP64 extra fields
// and ZIP64 end records.
std::string build_zip(const std::vector<Entry>& entries, bool zip64, const std::string& comment = "");

// Pickle opcodes, protocol 2.
std::string pstr(const std::string& s);
std::string pint(int32_t v);
std::string pfloat(double d);
std::string ptuple(const std::vector<int32_t>& v);
std::string pstorage(const std::string& key, const std::string& type, int32_t numel);
std::string ptensor(const std::string& storage, int32_t offset, const std::vector<int32_t>& shape,
                    const std::vector<int32_t>& stride);

// An argparse.Namespace with a member of every kind the reader handles or skips.
extern const std::string kArgs;
// A fairseq-style top level {'args': args, 'model': {model}}; `model` holds key/value opcodes.
std::string checkpoint_pickle(const std::string& args, const std::string& model);
std::string float_storage(std::initializer_list<float> values);
// The archive around data.pkl `pkl`, with storage 0 (six floats 0..5) and 1 (f16 1, -2).
std::string checkpoint_zip(const std::string& pkl, std::vector<Entry> extra = {});

}  // namespace t2r::test
