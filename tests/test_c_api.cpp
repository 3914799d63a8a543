// The C API's own behaviour where it adds to the runtime's (sessions, state): what a binding such
// as the JavaScript and Python modules relies on.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "t2r.h"

TEST_CASE("t2r_session_logits gives the last logits, also after a restore into a new session") {
  const std::string path = std::string(T2R_SOURCE_DIR) + "/models/default.t2r";
  t2r_model* model = t2r_model_load(path.c_str());
  REQUIRE(model != nullptr);
  t2r_model_info info;
  t2r_model_get_info(model, &info);
  const size_t V = size_t(info.vocab_size);
  t2r_session* session = t2r_session_create(model, nullptr);
  REQUIRE(session != nullptr);

  CHECK(t2r_session_logits(session) == nullptr);
  CHECK(std::string(t2r_last_error()) == "the session is empty: it has no logits before its first token");
  CHECK(t2r_session_logits(nullptr) == nullptr);
  CHECK(std::string(t2r_last_error()) == "session is NULL");

  const int32_t prompt[] = {0, 510, 1200, 33};
  const float* stepped = t2r_prefill(session, prompt, 4);
  REQUIRE(stepped != nullptr);
  CHECK(t2r_session_logits(session) == stepped);
  const std::vector<float> at_save(stepped, stepped + V);
  std::vector<char> state(size_t(t2r_state_save(session, nullptr, 0)));
  REQUIRE(t2r_state_save(session, state.data(), state.size()) == int64_t(state.size()));

  t2r_session* restored = t2r_session_create(model, nullptr);
  REQUIRE(t2r_state_restore(restored, state.data(), state.size()) == 0);
  const float* logits = t2r_session_logits(restored);
  REQUIRE(logits != nullptr);
  CHECK(std::memcmp(logits, at_save.data(), V * sizeof(float)) == 0);
  t2r_session_reset(restored);
  CHECK(t2r_session_logits(restored) == nullptr);

  t2r_session_free(restored);
  t2r_session_free(session);
  t2r_model_free(model);
}
