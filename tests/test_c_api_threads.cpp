// The C API from several threads at once, one session each on one shared model: every thread gets
// the results it would get alone, and its own error messages. .ci/run also runs this file's test
// under ThreadSanitizer (tests/CMakeLists.txt, t2r_thread_tests).
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "t2r.h"

namespace {

const std::string kDefaultModel = std::string(T2R_SOURCE_DIR) + "/models/default.t2r";

struct ThreadResult {
  std::vector<int32_t> tokens;
  std::vector<char> state;  // saved after the prompt
  std::string error;        // t2r_last_error() after this thread's own bad call
};

// Tokenizes, prefills, saves the state, generates `count` tokens with the given seed, then makes a
// call that fails with a message naming `bad_token`.
ThreadResult generate(const t2r_model* model, uint64_t seed, size_t count, int32_t bad_token) {
  ThreadResult r;
  const std::string prompt = "In the beginning";
  int32_t ids[64];
  const int64_t n = t2r_tokenize(model, prompt.data(), prompt.size(), ids, 64);
  if (n <= 0 || n > 64) return r;
  t2r_session_options options = t2r_session_default_options();
  options.threads = 2;  // the session's own thread pool runs too
  t2r_session* session = t2r_session_create(model, &options);
  t2r_sampler_options sampling = t2r_sampler_default_options();
  sampling.temperature = 0.8f;
  sampling.seed = seed;
  t2r_sampler* sampler = t2r_sampler_create(model, &sampling);
  const float* logits = t2r_prefill(session, ids, size_t(n));
  r.state.resize(size_t(t2r_state_save(session, nullptr, 0)));
  t2r_state_save(session, r.state.data(), r.state.size());
  while (logits && r.tokens.size() < count) {
    r.tokens.push_back(t2r_sample(sampler, logits));
    logits = t2r_step(session, r.tokens.back());
  }
  if (!t2r_step(session, bad_token)) r.error = t2r_last_error();
  t2r_sampler_free(sampler);
  t2r_session_free(session);
  return r;
}

}  // namespace

TEST_CASE("the C API runs one session per thread on a shared model as it runs alone") {
  t2r_model* model = t2r_model_load(kDefaultModel.c_str());
  REQUIRE(model != nullptr);
  t2r_model_info info;
  t2r_model_get_info(model, &info);
  const int32_t vocab = int32_t(info.vocab_size);
  constexpr size_t kThreads = 4, kTokens = 24;

  std::vector<ThreadResult> alone;
  for (size_t i = 0; i < kThreads; ++i) alone.push_back(generate(model, i, kTokens, vocab + int32_t(i)));
  REQUIRE(alone[0].tokens.size() == kTokens);
  CHECK(alone[0].tokens != alone[1].tokens);  // different seeds: the comparison below means something

  std::vector<ThreadResult> together(kThreads);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { together[i] = generate(model, i, kTokens, vocab + int32_t(i)); });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < kThreads; ++i) {
    CAPTURE(i);
    CHECK(together[i].tokens == alone[i].tokens);
    CHECK(together[i].state == alone[i].state);
    CHECK(together[i].error == alone[i].error);
    CHECK(together[i].error.find(std::to_string(vocab + int32_t(i))) != std::string::npos);
  }
  t2r_model_free(model);
}
