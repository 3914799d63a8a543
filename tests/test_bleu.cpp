#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bleu.h"
#include "error.h"
#include "json.h"
#include "reference.h"

using t2r::bleu_score;
using t2r::BleuScore;
using t2r::BleuStats;
using t2r::tokenize_13a;

namespace {

BleuStats corpus_stats(const std::vector<std::string>& hyps, const std::vector<std::string>& refs) {
  BleuStats stats;
  for (size_t i = 0; i < hyps.size(); ++i) stats.add(hyps[i], refs[i]);
  return stats;
}

void check_stats(const BleuStats& s, std::vector<int64_t> correct, std::vector<int64_t> total, int64_t sys_len,
                 int64_t ref_len) {
  CHECK(std::vector<int64_t>(s.correct, s.correct + 4) == correct);
  CHECK(std::vector<int64_t>(s.total, s.total + 4) == total);
  CHECK(s.sys_len == sys_len);
  CHECK(s.ref_len == ref_len);
}

std::string add_error(std::string_view hyp, std::string_view ref) {
  try {
    BleuStats().add(hyp, ref);
  } catch (const t2r::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// Expected outputs follow sacreBLEU's tokenizer_13a.py / tokenizer_re.py rules.
TEST_CASE("BLEU: 13a tokenizer splits punctuation as mteval-v13a") {
  CHECK(tokenize_13a("Hello, world.") == "Hello , world .");
  // Period and comma stay inside numbers, dash splits only after a digit.
  CHECK(tokenize_13a("It costs $3.50, or 1,000.5 yen.") == "It costs $ 3.50 , or 1,000.5 yen .");
  CHECK(tokenize_13a("1999-2000 and e-mail, well-known") == "1999 - 2000 and e-mail , well-known");
  CHECK(tokenize_13a("x1-2-3") == "x1 - 2 - 3");
  CHECK(tokenize_13a("U.S.A. 3.14. end...") == "U . S . A . 3.14 . end . . .");
  // Matches do not overlap: after "a." the second period has no character of its own before it.
  CHECK(tokenize_13a("a..b ,,c 3.,4 x.5 .5") == "a . . b , , c 3 . , 4 x . 5 . 5");
  // The apostrophe is kept; every other ASCII symbol stands alone.
  CHECK(tokenize_13a("don't {x}|~[y]\\^_`!#%*+=?@/z") == "don't { x } | ~ [ y ] \\ ^ _ ` ! # % * + = ? @ / z");
  // Non-ASCII punctuation is not split; a period after a multi-byte letter is.
  CHECK(tokenize_13a("\xE2\x80\x9CYes,\xE2\x80\x9D he said \xE2\x80\x94 \xC2\xABok\xC2\xBB.") ==
        "\xE2\x80\x9CYes , \xE2\x80\x9D he said \xE2\x80\x94 \xC2\xABok\xC2\xBB .");
  CHECK(tokenize_13a("a.\xC3\xA9.1\xC3\xA9,2") == "a . \xC3\xA9 . 1\xC3\xA9 , 2");
  CHECK(tokenize_13a("  ") == "");
  CHECK(tokenize_13a("") == "");
}

TEST_CASE("BLEU: 13a tokenizer unescapes, drops <skipped> and joins hyphenated lines in order") {
  CHECK(tokenize_13a("He said &quot;no&quot; &amp; left &lt;now&gt;.") == "He said \" no \" & left < now > .");
  // One pass each, &amp; before &lt;: "&amp;lt;" becomes "<" but "&amp;quot;" stays "&quot;".
  CHECK(tokenize_13a("&amp;quot; &amp;lt;") == "& quot ; <");
  CHECK(tokenize_13a("<skip<skipped>ped> a<skipped>b") == "< skipped > ab");
  CHECK(tokenize_13a("con-\ntinued\nnext-\n-\nline") == "continued nextline");
}

TEST_CASE("BLEU: 13a tokenizer splits at Python's whitespace only") {
  // NBSP, thin space, ideographic space, U+001C and tab separate; the zero-width space does not.
  CHECK(tokenize_13a("a\xC2\xA0" "b\xE2\x80\x89" "c\xE2\x80\x8B" "d\xE3\x80\x80" "e\x1C" "f\te") ==
        "a b c\xE2\x80\x8B" "d e f e");
}

TEST_CASE("BLEU: invalid UTF-8 is refused naming the side and the byte") {
  CHECK(add_error("ok \xFF", "ok") == "BLEU hypothesis: invalid UTF-8 at byte 3");
  CHECK(add_error("ok", "a\xC3") == "BLEU reference: invalid UTF-8 at byte 1");
  CHECK(add_error("\xED\xA0\x80", "ok") == "BLEU hypothesis: invalid UTF-8 at byte 0");  // a surrogate
  CHECK_THROWS_WITH_AS(tokenize_13a("\xC0\xAF"), "13a tokenizer: invalid UTF-8 at byte 0", t2r::Error);
}

TEST_CASE("BLEU: clipped counts, smoothing and brevity penalty as sacreBLEU's corpus_bleu") {
  SUBCASE("one sentence; the repeated 'the' matches once") {
    const BleuStats s = corpus_stats({"the cat sat on the mat"}, {"the cat sat on a mat"});
    check_stats(s, {5, 3, 2, 1}, {6, 5, 4, 3}, 6, 6);
    const BleuScore b = bleu_score(s);
    CHECK(b.score == doctest::Approx(53.7284965911771).epsilon(1e-14));
    CHECK(b.brevity_penalty == 1.0);
    CHECK(b.precisions[0] == doctest::Approx(500.0 / 6).epsilon(1e-15));
  }
  SUBCASE("statistics sum over sentences; short output pays exp(1 - 12/9)") {
    const BleuStats s = corpus_stats({"the cat sat on the mat", "a dog barked"},
                                     {"the cat sat on a mat", "the dog barked loudly at night"});
    check_stats(s, {7, 4, 2, 1}, {9, 7, 5, 3}, 9, 12);
    const BleuScore b = bleu_score(s);
    CHECK(b.brevity_penalty == doctest::Approx(std::exp(1.0 - 12.0 / 9.0)).epsilon(1e-15));
    CHECK(b.score == doctest::Approx(35.35283345573218).epsilon(1e-14));
  }
  SUBCASE("'exp' smoothing: the k-th order without a match counts 1/2^k") {
    const BleuStats s = corpus_stats({"a b c d"}, {"a b x d"});
    check_stats(s, {3, 1, 0, 0}, {4, 3, 2, 1}, 4, 4);
    const BleuScore b = bleu_score(s);
    CHECK(b.precisions[2] == 25.0);  // 100 / (2 * 2)
    CHECK(b.precisions[3] == 25.0);  // 100 / (4 * 1)
    CHECK(b.score == doctest::Approx(35.35533905932737).epsilon(1e-14));
  }
  SUBCASE("an order without any n-gram scores 0, however good the rest") {
    const BleuScore b = bleu_score(corpus_stats({"the cat sat"}, {"the cat sat on a mat"}));
    CHECK(b.precisions[2] == 100.0);
    CHECK(b.precisions[3] == 0.0);
    CHECK(b.brevity_penalty == doctest::Approx(std::exp(-1.0)).epsilon(1e-15));
    CHECK(b.score == 0.0);
  }
  SUBCASE("no match and no output") {
    CHECK(bleu_score(corpus_stats({"foo"}, {"bar"})).score == 0.0);
    const BleuScore empty = bleu_score(corpus_stats({""}, {"x"}));
    CHECK(empty.score == 0.0);
    CHECK(empty.brevity_penalty == 0.0);
  }
  SUBCASE("trailing whitespace goes before tokenizing, so a final '-\\n' keeps its dash") {
    check_stats(corpus_stats({"well-\n"}, {"well-"}), {1, 0, 0, 0}, {1, 0, 0, 0}, 1, 1);
  }
  SUBCASE("case-sensitive") {
    check_stats(corpus_stats({"The End"}, {"the end"}), {0, 0, 0, 0}, {2, 1, 0, 0}, 2, 2);
  }
}

#ifdef T2R_REFERENCE_MODELS

namespace {

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot open " << path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

t2r::json::Value json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot open " << path);
  std::stringstream s;
  s << in.rdbuf();
  return t2r::json::parse(s.str());
}

std::vector<int64_t> ints_of(const t2r::json::Value& array) {
  std::vector<int64_t> v;
  for (const auto& x : array.as_array()) v.push_back(x.as_int());
  return v;
}

}  // namespace

TEST_CASE("BLEU: the mt-* test decodes score what reference.json's sacreBLEU printed") {
  const std::vector<std::string> refs = lines_of(t2r::test::reference_dir("mt-data") + "/test.en");
  REQUIRE(refs.size() == 322);
  for (const char* name : {"mt-softmax", "mt-t2r", "mt-elu"}) {
    const t2r::json::Value json = json_file(t2r::test::reference_dir(name) + "/reference.json");
    for (const char* search : {"greedy", "beam5"}) {
      CAPTURE(name);
      CAPTURE(search);
      const t2r::json::Value& decodes = json.at(std::string("test_") + search);
      REQUIRE(decodes.as_array().size() == refs.size());
      BleuStats stats;
      for (size_t i = 0; i < refs.size(); ++i) stats.add(decodes.as_array()[i].at("text").as_string(), refs[i]);

      const t2r::json::Value& expected = json.at("test_bleu").at(std::string(search) + "_detail");
      check_stats(stats, ints_of(expected.at("correct")), ints_of(expected.at("total")),
                  expected.at("sys_len").as_int(), expected.at("ref_len").as_int());
      const BleuScore b = bleu_score(stats);
      CHECK(std::abs(b.score - expected.at("score").as_number()) <= 1e-9);
      CHECK(std::abs(b.brevity_penalty - expected.at("bp").as_number()) <= 1e-12);
      for (int n = 0; n < 4; ++n) {
        CHECK(std::abs(b.precisions[n] - expected.at("precisions").as_array()[size_t(n)].as_number()) <= 1e-9);
      }
    }
  }
}

#endif
