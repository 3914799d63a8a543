// A small strict reader of the protobuf wire format (what a SentencePiece .model file is):
// fields one at a time, with their number and wire type. It refuses, naming the byte
// offset, truncated input, overlong varints, field number 0, groups and unknown wire types;
// callers refuse known fields of the wrong wire type (expect()).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace t2r::protobuf {

enum class WireType : uint8_t { Varint = 0, Fixed64 = 1, Bytes = 2, Fixed32 = 5 };

class Reader {
 public:
  // `what` names the message in errors ("ModelProto", "SentencePiece 7").
  Reader(std::string_view bytes, std::string what) : bytes_(bytes), what_(std::move(what)) {}

  // Reads the next field's key; false at the end of the message.
  bool next();
  uint32_t field() const { return field_; }
  WireType wire_type() const { return wire_; }

  // Throws unless the current field has wire type `w`.
  void expect(WireType w) const;
  uint64_t varint();
  bool boolean() { return varint() != 0; }
  int32_t int32();  // int32/enum: the low 32 bits of the varint, as protobuf defines them
  float fixed32_float();
  std::string_view bytes();
  void skip();  // the current field's value, whatever its wire type

  [[noreturn]] void fail(const std::string& problem) const;

 private:
  uint64_t read_varint();

  std::string_view bytes_;
  std::string what_;
  size_t pos_ = 0;
  uint32_t field_ = 0;
  WireType wire_ = WireType::Varint;
};

}  // namespace t2r::protobuf
