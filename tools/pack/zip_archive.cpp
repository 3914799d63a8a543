#include "zip_archive.h"

#include <algorithm>
#include <array>

#include "error.h"

namespace t2r {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEocdSig = 0x06054b50,
                   kZip64EocdSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr size_t kEocdSize = 22, kZip64LocatorSize = 20, kZip64EocdSize = 56, kCentralSize = 46,
                 kLocalSize = 30;

// Bounds-checked little-endian reads from a window of the archive.
class Cursor {
 public:
  Cursor(std::string_view s, const std::string& where) : s_(s), where_(where) {}

  uint64_t pos() const { return pos_; }
  uint16_t u16() { return uint16_t(get(2)); }
  uint32_t u32() { return uint32_t(get(4)); }
  uint64_t u64() { return get(8); }
  std::string_view take(uint64_t n) {
    need(n);
    std::string_view out = s_.substr(pos_, n);
    pos_ += n;
    return out;
  }

 private:
  void need(uint64_t n) const {
    if (n > s_.size() - pos_) throw Error(where_ + " is truncated");
  }
  uint64_t get(int n) {
    need(n);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s_[pos_ + i]);
    pos_ += n;
    return v;
  }

  std::string_view s_;
  std::string where_;
  uint64_t pos_ = 0;
};

uint32_t sig_at(std::string_view bytes, uint64_t pos) {
  if (pos > bytes.size() || bytes.size() - pos < 4) return 0;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + pos);
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

}  // namespace

// Slicing-by-8: eight table lookups per 8 bytes, several times faster than one per byte,
// which matters when checking multi-GB checkpoints.
uint32_t crc32(std::string_view data) {
  using Tables = std::array<std::array<uint32_t, 256>, 8>;
  static const Tables t = [] {
    Tables r{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      r[0][i] = c;
    }
    for (int k = 1; k < 8; ++k)
      for (int i = 0; i < 256; ++i) r[k][i] = (r[k - 1][i] >> 8) ^ r[0][r[k - 1][i] & 0xFF];
    return r;
  }();
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  uint32_t c = 0xFFFFFFFFu;
  for (; n >= 8; p += 8, n -= 8) {
    uint32_t lo = c ^ (uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24);
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^ t[3][p[4]] ^
        t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
  }
  for (; n > 0; ++p, --n) c = t[0][(c ^ *p) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

ZipArchive::ZipArchive(std::string_view bytes, std::string label) : bytes_(bytes), label_(std::move(label)) {
  const std::string where = "zip '" + label_ + "'";
  if (bytes.size() < kEocdSize) throw Error(where + ": too small to be a zip archive");

  // The end record sits at the very end, after a comment of at most 64 KiB; the signature may
  // also occur inside the comment, so the record must account for exactly the rest of the file.
  uint64_t eocd = bytes.size() - kEocdSize;
  const uint64_t lowest = eocd - std::min<uint64_t>(eocd, 0xFFFF);
  for (;; --eocd) {
    if (sig_at(bytes, eocd) == kEocdSig) {
      Cursor c(bytes.substr(eocd + 20, 2), where);
      if (eocd + kEocdSize + c.u16() == bytes.size()) break;
    }
    if (eocd == lowest) throw Error(where + ": no end of central directory record (not a zip file?)");
  }
  Cursor end(bytes.substr(eocd, kEocdSize), where + " end record");
  end.u32();
  uint64_t disk = end.u16(), cd_disk = end.u16(), count_here = end.u16(), count = end.u16();
  uint64_t cd_size = end.u32(), cd_offset = end.u32();
  uint64_t limit = eocd;  // where the central directory must end

  if (eocd >= kZip64LocatorSize && sig_at(bytes, eocd - kZip64LocatorSize) == kZip64LocatorSig) {
    Cursor loc(bytes.substr(eocd - kZip64LocatorSize, kZip64LocatorSize), where + " ZIP64 locator");
    loc.u32();
    uint32_t record_disk = loc.u32();
    uint64_t record = loc.u64();
    uint32_t disks = loc.u32();
    if (record_disk != 0 || disks > 1) throw Error(where + ": multi-disk archives are not supported");
    limit = eocd - kZip64LocatorSize;
    if (record > limit || limit - record < kZip64EocdSize || sig_at(bytes, record) != kZip64EocdSig)
      throw Error(where + ": bad ZIP64 end of central directory offset");
    Cursor r(bytes.substr(record, kZip64EocdSize), where + " ZIP64 end record");
    r.take(16);  // signature, record size, versions
    disk = r.u32();
    cd_disk = r.u32();
    count_here = r.u64();
    count = r.u64();
    cd_size = r.u64();
    cd_offset = r.u64();
    limit = record;
  } else if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    throw Error(where + ": ZIP64 values without a ZIP64 locator");
  }
  if (disk != 0 || cd_disk != 0 || count_here != count)
    throw Error(where + ": multi-disk archives are not supported");
  if (cd_offset > limit || cd_size > limit - cd_offset)
    throw Error(where + ": central directory lies outside the archive");
  if (count > cd_size / kCentralSize)
    throw Error(where + ": entry count " + std::to_string(count) + " exceeds the central directory");
  parse_central_directory(cd_offset, cd_size, count);
}

void ZipArchive::parse_central_directory(uint64_t offset, uint64_t size, uint64_t count) {
  const uint64_t limit = offset;  // local headers and their data precede the directory
  const std::string where = "zip '" + label_ + "'";
  Cursor c(bytes_.substr(offset, size), where + " central directory");
  entries_.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    if (c.u32() != kCentralSig)
      throw Error(where + ": bad central directory entry signature at entry " + std::to_string(i));
    c.take(4);  // versions
    uint16_t flags = c.u16(), method = c.u16();
    c.take(4);  // time, date
    uint32_t crc = c.u32();
    uint64_t csize = c.u32(), usize = c.u32();
    uint16_t name_len = c.u16(), extra_len = c.u16(), comment_len = c.u16();
    uint64_t disk = c.u16();
    c.take(6);  // attributes
    uint64_t local = c.u32();
    std::string name(c.take(name_len));
    const std::string ewhere = where + " entry '" + name + "'";

    // A ZIP64 extra field holds, in this order, only those values whose 32-bit field is saturated.
    Cursor extra(c.take(extra_len), ewhere + " extra field");
    while (extra.pos() < extra_len) {
      uint16_t id = extra.u16(), len = extra.u16();
      Cursor field(extra.take(len), ewhere + " ZIP64 extra field");
      if (id != 0x0001) continue;
      if (usize == 0xFFFFFFFF) usize = field.u64();
      if (csize == 0xFFFFFFFF) csize = field.u64();
      if (local == 0xFFFFFFFF) local = field.u64();
      if (disk == 0xFFFF) disk = field.u32();
    }
    c.take(comment_len);

    if (flags & 0x41) throw Error(ewhere + " is encrypted");
    if (disk != 0) throw Error(ewhere + ": multi-disk archives are not supported");
    if (method == 0 && csize != usize)
      throw Error(ewhere + " is stored but its sizes differ (" + std::to_string(csize) + " vs " +
                  std::to_string(usize) + ")");

    // The data follows the local header, whose name and extra field may differ in length
    // from the central ones; the sizes are taken from the central directory.
    if (local > limit || limit - local < kLocalSize || sig_at(bytes_, local) != kLocalSig)
      throw Error(ewhere + ": bad local header offset");
    Cursor lh(bytes_.substr(local, kLocalSize), ewhere + " local header");
    lh.take(26);
    uint64_t data = local + kLocalSize + lh.u16();
    data += lh.u16();
    if (bytes_.substr(local + kLocalSize, name_len) != name)
      throw Error(ewhere + ": local header names a different entry");
    if (data > limit || csize > limit - data) throw Error(ewhere + ": data lies outside the archive");

    if (!index_.emplace(name, entries_.size()).second)
      throw Error(where + ": duplicate entry '" + name + "'");
    entries_.push_back({std::move(name), method, crc, bytes_.substr(data, csize)});
  }
  if (c.pos() != size) throw Error(where + ": central directory size does not match its entries");
}

std::vector<std::string> ZipArchive::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) out.push_back(e.name);
  return out;
}

bool ZipArchive::contains(std::string_view name) const { return index_.count(name) != 0; }

std::string_view ZipArchive::read(std::string_view name, bool check_crc) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw Error("zip '" + label_ + "': no entry '" + std::string(name) + "'");
  const Entry& e = entries_[it->second];
  if (e.method != 0)
    throw Error("zip '" + label_ + "': zip entry " + e.name + " is compressed (method " +
                std::to_string(e.method) + "); torch checkpoints are stored uncompressed");
  if (check_crc && crc32(e.data) != e.crc)
    throw Error("zip '" + label_ + "': entry '" + e.name + "' fails its CRC-32 check");
  return e.data;
}

}  // namespace t2r
