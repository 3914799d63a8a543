#include "protobuf_reader.h"

#include <cstring>

#include "error.h"

namespace t2r::protobuf {

void Reader::fail(const std::string& problem) const {
  throw Error(what_ + ": " + problem + " at byte " + std::to_string(pos_));
}

uint64_t Reader::read_varint() {
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (pos_ >= bytes_.size()) fail("truncated varint");
    const uint8_t b = uint8_t(bytes_[pos_++]);
    if (shift == 63 && b > 1) fail("varint over 64 bits");
    v |= uint64_t(b & 0x7F) << shift;
    if (!(b & 0x80)) return v;
  }
  fail("varint longer than 10 bytes");
}

uint64_t Reader::varint() {
  expect(WireType::Varint);
  return read_varint();
}

bool Reader::next() {
  if (pos_ >= bytes_.size()) return false;
  const uint64_t key = read_varint();
  const uint64_t number = key >> 3, wire = key & 7;
  if (number == 0 || number > 0x1FFFFFFF) fail("field number " + std::to_string(number));
  if (wire != 0 && wire != 1 && wire != 2 && wire != 5) {
    fail("wire type " + std::to_string(wire) + " of field " + std::to_string(number) +
         " (groups are not supported)");
  }
  field_ = uint32_t(number);
  wire_ = WireType(wire);
  return true;
}

void Reader::expect(WireType w) const {
  if (wire_ != w) {
    fail("field " + std::to_string(field_) + " has wire type " + std::to_string(int(wire_)) +
         ", expected " + std::to_string(int(w)));
  }
}

int32_t Reader::int32() { return int32_t(uint32_t(varint())); }

float Reader::fixed32_float() {
  expect(WireType::Fixed32);
  if (bytes_.size() - pos_ < 4) fail("truncated fixed32");
  float f = 0;
  std::memcpy(&f, bytes_.data() + pos_, 4);  // little-endian, as the wire format is
  pos_ += 4;
  return f;
}

std::string_view Reader::bytes() {
  expect(WireType::Bytes);
  const uint64_t n = read_varint();
  if (n > bytes_.size() - pos_) fail("length " + std::to_string(n) + " beyond the end");
  const std::string_view out = bytes_.substr(pos_, size_t(n));
  pos_ += size_t(n);
  return out;
}

void Reader::skip() {
  switch (wire_) {
    case WireType::Varint: read_varint(); break;
    case WireType::Fixed64:
      if (bytes_.size() - pos_ < 8) fail("truncated fixed64");
      pos_ += 8;
      break;
    case WireType::Bytes: bytes(); break;
    case WireType::Fixed32: fixed32_float(); break;
  }
}

}  // namespace t2r::protobuf
