#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include "error.h"
#include "json.h"

using t2r::json::parse;
using t2r::json::Value;

namespace {

// The message of the t2r::Error that parsing `text` throws, or "" when it parses.
std::string parse_error(std::string_view text) {
  try {
    parse(text);
  } catch (const t2r::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("json: scalars and structure") {
  Value v = parse(R"( {"a": [1, -2.5, 3e2, 0, -0.0, 1E-2], "b": true, "c": false, "d": null,
                       "e": {}, "f": [], "g": "x"} )");
  const auto& a = v.at("a").as_array();
  REQUIRE(a.size() == 6);
  CHECK(a[0].as_int() == 1);
  CHECK(a[1].as_number() == -2.5);
  CHECK(a[2].as_int() == 300);
  CHECK(a[3].as_number() == 0);
  CHECK(a[5].as_number() == 0.01);
  CHECK(v.at("b").as_bool());
  CHECK_FALSE(v.at("c").as_bool());
  CHECK(v.at("d").is_null());
  CHECK(v.at("e").as_object().empty());
  CHECK(v.at("f").as_array().empty());
  CHECK(v.at("g").as_string() == "x");
  CHECK(v.as_object()[0].first == "a");  // file order kept
  CHECK(v.find("zz") == nullptr);
  CHECK(parse("42").as_int() == 42);
  CHECK(parse("0.1").as_number() == 0.1);
  CHECK(parse("123456789012345678").as_number() == 123456789012345678.0);
  CHECK(parse("2.2250738585072014e-308").as_number() == 2.2250738585072014e-308);
}

TEST_CASE("json: escapes and unicode") {
  CHECK(parse(R"("\"\\\/\b\f\n\r\t")").as_string() == "\"\\/\b\f\n\r\t");
  CHECK(parse(R"("\u0041\u00e9\u20AC")").as_string() == "A\xC3\xA9\xE2\x82\xAC");
  CHECK(parse(R"("\ud83d\ude00")").as_string() == "\xF0\x9F\x98\x80");  // U+1F600
  CHECK(parse(R"("\u0000")").as_string() == std::string(1, '\0'));
  CHECK(parse("\"\xC4\xA0hello \xF0\x9F\x98\x80\"").as_string() == "\xC4\xA0hello \xF0\x9F\x98\x80");
}

TEST_CASE("json: duplicate keys are allowed and the last wins") {
  Value v = parse(R"({"k": 1, "k": 2})");
  CHECK(v.at("k").as_int() == 2);
  CHECK(v.as_object().size() == 2);
}

TEST_CASE("json: accessor errors name the types") {
  Value v = parse(R"({"s": "x", "n": 1.5, "big": 1e300})");
  CHECK_THROWS_WITH_AS(v.at("s").as_number(), "JSON: expected number, got string", t2r::Error);
  CHECK_THROWS_WITH_AS(v.at("missing"), "JSON: missing key 'missing'", t2r::Error);
  CHECK_THROWS_AS(v.at("n").as_int(), t2r::Error);
  CHECK_THROWS_AS(v.at("big").as_int(), t2r::Error);
  CHECK_THROWS_WITH_AS(v.as_array(), "JSON: expected array, got object", t2r::Error);
  CHECK(parse("9007199254740992").as_int() == 9007199254740992LL);
  CHECK_THROWS_AS(parse("9007199254740994").as_int(), t2r::Error);
}

TEST_CASE("json: malformed input is refused with position") {
  CHECK(parse_error("") == "JSON: unexpected end of input at line 1, column 1");
  CHECK(parse_error("[1,]") == "JSON: unexpected character at line 1, column 4");
  CHECK(parse_error("{\"a\":1,}") == "JSON: expected a string key at line 1, column 8");
  CHECK(parse_error("[1\n,\n  x]") == "JSON: unexpected character at line 3, column 3");
  CHECK(parse_error("// c\n1") == "JSON: unexpected character at line 1, column 1");
  CHECK(parse_error("1 2") == "JSON: unexpected data after the top-level value at line 1, column 3");
  CHECK(parse_error("01") == "JSON: leading zero in number at line 1, column 1");
  CHECK(parse_error("-") == "JSON: invalid number at line 1, column 2");
  CHECK(parse_error("1.") == "JSON: expected a digit after the decimal point at line 1, column 3");
  CHECK(parse_error("1e+") == "JSON: expected a digit in the exponent at line 1, column 4");
  CHECK(parse_error("+1") == "JSON: unexpected character at line 1, column 1");
  CHECK(parse_error(".5") == "JSON: unexpected character at line 1, column 1");
  CHECK(parse_error("1e400") == "JSON: number out of double range at line 1, column 1");
  CHECK(parse_error("NaN") == "JSON: unexpected character at line 1, column 1");
  CHECK(parse_error("tru") == "JSON: invalid literal at line 1, column 1");
  CHECK(parse_error("nulll") == "JSON: unexpected data after the top-level value at line 1, column 5");
  CHECK(parse_error("\"abc") == "JSON: unterminated string at line 1, column 5");
  CHECK(parse_error("\"a\tb\"") == "JSON: control character in string at line 1, column 3");
  CHECK(parse_error(R"("\x")") == "JSON: invalid escape at line 1, column 2");
  CHECK(parse_error(R"("\u12zz")") == "JSON: invalid hex digit in \\u escape at line 1, column 6");
  CHECK(parse_error(R"("\u12)") == "JSON: truncated \\u escape at line 1, column 4");
  CHECK(parse_error(R"("\ud83d")") == "JSON: lone high surrogate in \\u escape at line 1, column 2");
  CHECK(parse_error(R"("\ud83d\u0041")") == "JSON: lone high surrogate in \\u escape at line 1, column 2");
  CHECK(parse_error(R"("\ude00")") == "JSON: lone low surrogate in \\u escape at line 1, column 2");
  CHECK(parse_error("{\"a\" 1}") == "JSON: expected ':' after object key at line 1, column 6");
  CHECK(parse_error("[1 2]") == "JSON: expected ',' or ']' in array at line 1, column 4");
  CHECK(parse_error("{\"a\":1") == "JSON: unexpected end of input in object at line 1, column 7");
  CHECK(parse_error("\xEF\xBB\xBF{}") == "JSON: unexpected character at line 1, column 1");
}

TEST_CASE("json: invalid UTF-8 is refused") {
  CHECK(parse_error("\"\x80\"") == "JSON: invalid UTF-8 at line 1, column 2");
  CHECK(parse_error("\"\xC0\xAF\"") == "JSON: invalid UTF-8 at line 1, column 2");  // overlong
  CHECK(parse_error("\"\xE0\x80\xAF\"") == "JSON: invalid UTF-8 at line 1, column 2");
  CHECK(parse_error("\"\xED\xA0\x80\"") == "JSON: invalid UTF-8 at line 1, column 2");  // surrogate
  CHECK(parse_error("\"\xF4\x90\x80\x80\"") == "JSON: invalid UTF-8 at line 1, column 2");
  CHECK(parse_error("\"\xF5\x80\x80\x80\"") == "JSON: invalid UTF-8 at line 1, column 2");
  CHECK(parse_error("\"\xE2\x82") == "JSON: truncated UTF-8 sequence at line 1, column 2");
  CHECK(parse_error("\"\xE2\x28\xA1\"") == "JSON: invalid UTF-8 at line 1, column 2");
}

TEST_CASE("json: nesting depth is limited") {
  CHECK_NOTHROW(parse(std::string(512, '[') + std::string(512, ']')));
  CHECK(parse_error(std::string(513, '[') + std::string(513, ']')) ==
        "JSON: nesting deeper than 512 at line 1, column 513");
  CHECK(parse_error(std::string(100000, '[')) == "JSON: nesting deeper than 512 at line 1, column 513");
  std::string objects;
  for (int i = 0; i < 600; ++i) objects += "{\"a\":";
  CHECK(parse_error(objects).find("nesting deeper than 512") != std::string::npos);
}

#ifdef T2R_REFERENCE_MODELS
TEST_CASE("json: real tokenizer.json parses quickly") {
  std::ifstream in(std::string(T2R_REFERENCE_MODELS) + "/llama-t2r/tokenizer.json", std::ios::binary);
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto t0 = std::chrono::steady_clock::now();
  Value v = parse(text);
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("tokenizer.json parsed in " << ms << " ms");
  CHECK(v.at("model").at("vocab").as_object().size() > 1000);
}
#endif
