#include "torch_checkpoint_builder.h"

#include <cstring>

#include "zip_archive.h"

namespace t2r::test {

void put(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s += char((v >> (8 * i)) & 0xFF);
}

std::string build_zip(const std::vector<Entry>& entries, bool zip64, const std::string& comment) {
  std::string out, central;
  for (const Entry& e : entries) {
    uint64_t offset = out.size();
    uint32_t crc = crc32(e.data);
    put(out, 0x04034b50, 4);
    put(out, 20, 2), put(out, 0, 2), put(out, e.method, 2), put(out, 0, 4);
    put(out, crc, 4), put(out, e.data.size(), 4), put(out, e.data.size(), 4);
    put(out, e.name.size(), 2), put(out, 3, 2);
    out += e.name + "pad" + e.data;  // a local extra field the reader must skip

    std::string extra;
    if (zip64)
      put(extra, 1, 2), put(extra, 24, 2), put(extra, e.data.size(), 8), put(extra, e.data.size(), 8),
          put(extra, offset, 8);
    uint64_t small = zip64 ? 0xFFFFFFFF : 0;
    put(central, 0x02014b50, 4);
    put(central, 20, 2), put(central, 20, 2), put(central, 0, 2), put(central, e.method, 2),
        put(central, 0, 4);
    put(central, crc, 4), put(central, zip64 ? small : e.data.size(), 4),
        put(central, zip64 ? small : e.data.size(), 4);
    put(central, e.name.size(), 2), put(central, extra.size(), 2), put(central, 0, 2);
    put(central, 0, 2), put(central, 0, 2), put(central, 0, 4), put(central, zip64 ? small : offset, 4);
    central += e.name + extra;
  }
  uint64_t cd_offset = out.size();
  out += central;
  if (zip64) {
    uint64_t record = out.size();
    put(out, 0x06064b50, 4), put(out, 44, 8), put(out, 45, 2), put(out, 45, 2), put(out, 0, 4),
        put(out, 0, 4);
    put(out, entries.size(), 8), put(out, entries.size(), 8), put(out, central.size(), 8),
        put(out, cd_offset, 8);
    put(out, 0x07064b50, 4), put(out, 0, 4), put(out, record, 8), put(out, 1, 4);
  }
  put(out, 0x06054b50, 4), put(out, 0, 2), put(out, 0, 2);
  put(out, zip64 ? 0xFFFF : entries.size(), 2), put(out, zip64 ? 0xFFFF : entries.size(), 2);
  put(out, zip64 ? 0xFFFFFFFF : central.size(), 4), put(out, zip64 ? 0xFFFFFFFF : cd_offset, 4);
  put(out, comment.size(), 2);
  return out + comment;
}

std::string pstr(const std::string& s) {
  std::string out = "X";
  put(out, s.size(), 4);
  return out + s;
}
std::string pint(int32_t v) {
  std::string out = "J";
  put(out, uint32_t(v), 4);
  return out;
}
std::string pfloat(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, 8);
  std::string out = "G";
  for (int i = 7; i >= 0; --i) out += char((bits >> (8 * i)) & 0xFF);
  return out;
}
std::string ptuple(const std::vector<int32_t>& v) {
  std::string out = "(";
  for (int32_t x : v) out += pint(x);
  return out + "t";
}
std::string pstorage(const std::string& key, const std::string& type, int32_t numel) {
  return "(" + pstr("storage") + "ctorch\n" + type + "\n" + pstr(key) + pstr("cpu") + pint(numel) + "tQ";
}
std::string ptensor(const std::string& storage, int32_t offset, const std::vector<int32_t>& shape,
                    const std::vector<int32_t>& stride) {
  return "ctorch._utils\n_rebuild_tensor_v2\n(" + storage + pint(offset) + ptuple(shape) + ptuple(stride) +
         "\x89"
         "ccollections\nOrderedDict\n)RtR";
}

extern const std::string kArgs;
const std::string kArgs = "cargparse\nNamespace\n)\x81}(" + pstr("layers") + pint(6) + pstr("name") +
                          pstr("mlp") + pstr("rate") + pfloat(0.25) + pstr("flag") + "\x88" + pstr("none") +
                          "N" + pstr("list") + "]" + pint(1) + "a" + pint(2) + "a" + pstr("tuple") + pint(3) +
                          pstr("x") + "\x86" + pstr("blob") + "C\x02xy" + pstr("nested") + "}" + pstr("k") +
                          pint(1) + "s" + pint(7) + pstr("int key") + "ub";

std::string checkpoint_pickle(const std::string& args, const std::string& model) {
  return std::string("\x80\x02}(") + pstr("args") + args + pstr("model") + "}(" + model + "uu.";
}

std::string float_storage(std::initializer_list<float> values) {
  std::string out;
  for (float f : values) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    put(out, bits, 4);
  }
  return out;
}

std::string checkpoint_zip(const std::string& pkl, std::vector<Entry> extra) {
  std::vector<Entry> entries = {{"archive/data.pkl", pkl},
                                {"archive/byteorder", "little"},
                                {"archive/data/0", float_storage({0, 1, 2, 3, 4, 5})},
                                {"archive/data/1", raw("\x00\x3c\x00\xc0")}};
  entries.insert(entries.end(), extra.begin(), extra.end());
  return build_zip(entries, true);
}

}  // namespace t2r::test
