// Reader for the zip archives that torch.save writes: every entry stored (uncompressed),
// ZIP64 structures used for large checkpoints. Entries are returned as views of the bytes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace t2r {

class ZipArchive {
 public:
  // Validates the whole directory; `bytes` must outlive the archive. `label` names it in errors.
  explicit ZipArchive(std::string_view bytes, std::string label);

  std::vector<std::string> names() const;  // central directory order
  bool contains(std::string_view name) const;
  // The stored bytes of entry `name`; throws t2r::Error if it is missing, compressed, or (with
  // check_crc) its CRC-32 does not match.
  std::string_view read(std::string_view name, bool check_crc = true) const;

 private:
  struct Entry {
    std::string name;
    uint16_t method;
    uint32_t crc;
    std::string_view data;  // as stored: compressed unless method is 0
  };
  void parse_central_directory(uint64_t offset, uint64_t size, uint64_t count);

  std::string_view bytes_;
  std::string label_;
  std::vector<Entry> entries_;
  std::map<std::string, size_t, std::less<>> index_;
};

// The CRC-32 used by zip (polynomial 0xEDB88320).
uint32_t crc32(std::string_view data);

}  // namespace t2r
