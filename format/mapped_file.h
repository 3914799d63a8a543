// A read-only view of a whole file, mapped with POSIX mmap so that multi-GB checkpoints
// are neither copied nor read in full before they are needed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace t2r {

class MappedFile {
 public:
  // Throws t2r::Error naming the path and the system's reason.
  explicit MappedFile(const std::string& path);
  ~MappedFile();

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;

  std::string_view bytes() const { return {static_cast<const char*>(data_), size_}; }
  const std::string& path() const { return path_; }

 private:
  void unmap();

  std::string path_;
  void* data_ = nullptr;  // nullptr for an empty file, which mmap refuses
  size_t size_ = 0;
};

bool is_regular_file(const std::string& path);

// Drops the pages wholly inside `range` (part of a read-only mapping) from this process's memory;
// reading them again maps them in again. Lets a reader stream a file larger than its memory.
void release_mapped_pages(std::string_view range);

}  // namespace t2r
