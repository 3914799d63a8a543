// Sessions: fixed memory (no allocation per token), reset, state save/restore, sampling.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "error.h"
#include "reference.h"
#include "sampler.h"
#include "sequence_state.h"
#include "session.h"
#include "test_support.h"

using namespace t2r;
using t2r::test::heap_allocations;
using t2r::test::TinyModel;

TEST_CASE("the sampler is greedy at temperature 0 and reproducible with a seed") {
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.9f, 0.0f};
  Sampler greedy(5, {});
  CHECK(greedy.sample(logits.data()) == 1);

  SamplerOptions options;
  options.temperature = 1.0f;
  options.seed = 42;
  Sampler a(5, options), b(5, options);
  std::vector<int32_t> from_a, from_b;
  for (int i = 0; i < 200; ++i) {
    from_a.push_back(a.sample(logits.data()));
    from_b.push_back(b.sample(logits.data()));
  }
  CHECK(from_a == from_b);
  // Temperature sampling visits more than the argmax; top-k 2 never leaves the two best.
  CHECK(std::count(from_a.begin(), from_a.end(), 1) < 200);
  options.top_k = 2;
  Sampler top2(5, options);
  for (int i = 0; i < 200; ++i) {
    int32_t t = top2.sample(logits.data());
    CHECK((t == 1 || t == 3));
  }
  // top-p 0.5: token 1 alone holds less than half the mass, 1 and 3 together more.
  options.top_k = 0;
  options.top_p = 0.5f;
  Sampler nucleus(5, options);
  for (int i = 0; i < 200; ++i) {
    int32_t t = nucleus.sample(logits.data());
    CHECK((t == 1 || t == 3));
  }
  // A nucleus smaller than 1 / n holds the most likely token alone, even when the pre-filter's
  // cutoff (1 - p) / (n - 1) exceeds that token's probability.
  SamplerOptions tiny_nucleus;
  tiny_nucleus.temperature = 1.0f;
  tiny_nucleus.top_p = 0.1f;
  tiny_nucleus.seed = 7;
  Sampler tiny(4, tiny_nucleus);
  const std::vector<float> nearly_flat = {0.0f, 0.0f, 0.0f, 0.01f};
  for (int i = 0; i < 50; ++i) CHECK(tiny.sample(nearly_flat.data()) == 3);
  // A strong repetition penalty moves greedy decoding off a token it just produced.
  SamplerOptions penalized;
  penalized.repetition_penalty = 10.0f;
  Sampler p(5, penalized);
  CHECK(p.sample(logits.data()) == 1);
  CHECK(p.sample(logits.data()) == 3);

  options = {};
  options.top_p = 0;
  CHECK_THROWS_AS(Sampler(5, options), Error);
  options = {};
  options.temperature = -1;
  CHECK_THROWS_AS(Sampler(5, options), Error);
}

TEST_CASE("the sampler makes a defined choice from NaN and infinite logits") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  SamplerOptions sampling;
  sampling.temperature = 1.0f;
  sampling.top_p = 0.9f;  // sorts the candidates, which NaN used to break
  sampling.seed = 3;
  Sampler greedy(6, {}), sampler(6, sampling);
  const std::vector<float> with_nan = {nan, 1.0f, nan, 2.0f, nan, -1.0f};
  CHECK(greedy.sample(with_nan.data()) == 3);
  for (int i = 0; i < 200; ++i) {
    const int32_t t = sampler.sample(with_nan.data());
    CHECK((t == 1 || t == 3 || t == 5));  // never a NaN one
  }
  const std::vector<float> with_inf = {0.0f, inf, nan, inf, -inf, 1.0f};
  CHECK(greedy.sample(with_inf.data()) == 1);
  CHECK(sampler.sample(with_inf.data()) == 1);  // an infinite maximum is taken greedily
  const std::vector<float> all_nan(6, nan);
  CHECK(greedy.sample(all_nan.data()) == 0);
  CHECK(sampler.sample(all_nan.data()) == 0);
}


TEST_CASE("a session refuses options and plans beyond its limits with the bytes it needs") {
  const TinyModel softmax(false), t2r(true);
  SessionOptions options;
  options.threads = 1;
  options.max_context = 1000;
  const size_t needed = Session(*softmax.model, options).bytes();
  // 2 (keys and values) x 1 layer x 1000 positions x 32 floats (one kv head of 32) x 4 bytes.
  const size_t cache = 2 * 1000 * 32 * 4;
  CHECK(needed > cache);
  options.memory_budget = needed - 1;
  CHECK_THROWS_WITH_AS(Session(*softmax.model, options),
                       ("the session needs " + std::to_string(needed) + " bytes (a KV cache of 1000 positions: " +
                        std::to_string(cache) + " bytes), over the memory budget of " + std::to_string(needed - 1) +
                        " bytes")
                           .c_str(),
                       Error);
  options.memory_budget = needed;
  CHECK(Session(*softmax.model, options).bytes() == needed);

  options.memory_budget = 1000;
  const size_t t2r_needed = Session(*t2r.model, SessionOptions{0, 1, 64, 0}).bytes();
  CHECK_THROWS_WITH_AS(Session(*t2r.model, options),
                       ("the session needs " + std::to_string(t2r_needed) +
                        " bytes, over the memory budget of 1000 bytes")
                           .c_str(),
                       Error);

  // Checked before anything is started or allocated.
  CHECK_THROWS_WITH_AS(Session(*t2r.model, SessionOptions{0, 1 << 30, 64, 0}), "threads must be in [0, 1024]", Error);
  CHECK_THROWS_WITH_AS(Session(*softmax.model, SessionOptions{-5, 1, 64, 0}),
                       "max context must be >= 0 (0: the model's maximum)", Error);
  CHECK_THROWS_WITH_AS(Session(*softmax.model, SessionOptions{int64_t(1) << 40, 1, 64, 0}),
                       "a KV cache of 1099511627776 positions needs 281474.976711 GB; choose a smaller max context",
                       Error);
}

TEST_CASE("a damaged or hostile saved state is refused and leaves the session as it was") {
  const TinyModel t2r(true);
  Session session(*t2r.model, SessionOptions{0, 1, 64, 0});
  for (int32_t t : {5, 6, 7}) session.step(t);
  std::vector<unsigned char> good(session.state_size());
  session.save_state(good.data(), good.size());
  const std::vector<float> before(session.logits(), session.logits() + 256);

  auto restore_error = [&](const std::vector<unsigned char>& state) -> std::string {
    try {
      session.restore_state(state.data(), state.size());
    } catch (const Error& e) {
      CHECK(session.position() == 3);
      CHECK(std::equal(before.begin(), before.end(), session.logits()));
      return e.what();
    }
    return "";
  };
  auto with = [&](size_t at, const auto& value) {
    std::vector<unsigned char> bad = good;
    std::memcpy(bad.data() + at, &value, sizeof value);
    return bad;
  };
  CHECK(restore_error(with(12, uint32_t(1))) == "session state is damaged (its reserved field is not zero)");
  CHECK(restore_error(with(24, int64_t(-1))) == "session state position -1 does not fit this session");
  CHECK(restore_error(with(24, int64_t(1) << 60)) ==
        "session state position 1152921504606846976 does not fit this session");
  CHECK(restore_error(with(32, uint64_t(7))) ==
        "session state of " + std::to_string(good.size()) + " bytes does not match this model (expected " +
            std::to_string(good.size()) + ")");
  CHECK(restore_error(with(40 + 4 * 9, std::numeric_limits<float>::quiet_NaN())) ==
        "session state holds NaN at float 9 of its payload");
  CHECK(restore_error(with(good.size() - 4, -std::numeric_limits<float>::infinity())) ==
        "session state holds -inf at float " + std::to_string((good.size() - 44) / 4) + " of its payload");

  // The largest position a state may claim is accepted; stepping past the count is refused.
  std::vector<unsigned char> last = with(24, int64_t(1) << 53);
  session.restore_state(last.data(), last.size());
  CHECK(session.position() == int64_t(1) << 53);
  CHECK_THROWS_WITH_AS(session.step(1), "the session cannot count beyond 9007199254740992 positions; reset it", Error);
}

TEST_CASE("the state's magnitude and the last layer's heads read the recurrent state") {
  const TinyModel t2r(true), softmax(false);
  Session session(*t2r.model, SessionOptions{0, 1, 64, 0});
  for (int32_t t : {10, 20, 30, 40}) session.step(t);
  const Hyperparams& hp = t2r.model->hparams();
  const size_t r = size_t(hp.feature_dim()), dh = size_t(hp.head_dim), H = size_t(hp.n_heads);
  std::vector<unsigned char> saved(session.state_size());
  session.save_state(saved.data(), saved.size());
  // The payload after the logits: S [L, H, r, d_h], then z [L, H, r] (runtime/sequence_state.h).
  std::vector<float> state(H * r * dh), normalizer(H * r);
  const size_t payload = kStateHeaderBytes + size_t(hp.vocab_size) * 4;
  std::memcpy(state.data(), saved.data() + payload, state.size() * 4);
  std::memcpy(normalizer.data(), saved.data() + payload + state.size() * 4, normalizer.size() * 4);
  float max_s = 0;
  for (float x : state) max_s = std::max(max_s, std::fabs(x));
  const StateMagnitude m = session.state_magnitude();
  CHECK(m.max_abs_state == max_s);
  CHECK(m.max_normalizer == *std::max_element(normalizer.begin(), normalizer.end()));
  CHECK(m.max_normalizer > 0);
  for (size_t h = 0; h < H; ++h) {
    const HeadView view = session.last_layer_head(h);
    CHECK(std::equal(view.state, view.state + r * dh, state.data() + h * r * dh));
    CHECK(std::equal(view.normalizer, view.normalizer + r, normalizer.data() + h * r));
  }
  CHECK_THROWS_WITH_AS(session.last_layer_head(H), "last_layer_head: head 2 does not exist", Error);
  Session other(*softmax.model, SessionOptions{16, 1, 64, 0});
  CHECK_THROWS_WITH_AS(other.state_magnitude(), "state_magnitude: softmax attention has no recurrent state", Error);
}

#ifdef T2R_REFERENCE_MODELS

using namespace t2r::test;

TEST_CASE("stepping a token allocates nothing") {
  for (const char* name : {"llama-t2r", "llama-softmax", "fairseq-t2r"}) {
    CAPTURE(name);
    const Model& model = packed_reference_model(name, DType::F32);
    Session session(model);
    SamplerOptions options;
    options.temperature = 0.8f;
    options.top_p = 0.9f;
    options.top_k = 40;
    options.repetition_penalty = 1.1f;
    Sampler sampler(int32_t(model.hparams().vocab_size), options);
    std::vector<char> state(16 << 20);  // room for 100 positions of a softmax cache
    int32_t token = 5;
    const size_t before = heap_allocations();
    for (int i = 0; i < 100; ++i) token = sampler.sample(session.step(token));
    session.save_state(state.data(), state.size());
    session.restore_state(state.data(), session.state_size());
    session.reset();
    const size_t after = heap_allocations();
    CHECK(after - before == 0);
  }
}

TEST_CASE("length-adaptive prefill allocates nothing") {
  const Model& model = packed_reference_model("llama-t2r", DType::F32);
  const std::vector<int32_t>& ids = reference_outputs("llama-t2r").valid_ids;
  SessionOptions options;
  options.max_adaptive_prompt = 1000;
  Session session(model, options);
  std::vector<LengthConfig> configs(3, parse_length_config("1,0.7,0.5,0.3,0.2,0.1", 6));
  configs[1].significance = Significance::KeyNorm;
  configs[2].significance = Significance::Recency;
  configs[2].pinned_head = 4;
  const size_t before = heap_allocations();
  for (const LengthConfig& config : configs) {
    session.reset();
    session.prefill_adaptive(ids.data(), 1000, config);
    session.step(ids[1000]);
  }
  CHECK(heap_allocations() - before == 0);
  // Its buffers are planned for the longest prompt: the residual stream beyond one chunk (64
  // rows), and phi(k), position, score and order of every token.
  const Hyperparams& hp = model.hparams();
  const size_t planned = ((1000 - 64) * size_t(hp.dim) + 1000 * size_t(hp.n_heads * hp.feature_dim() + 4)) * 4;
  CHECK(session.adaptive_bytes() >= planned);
  CHECK(session.adaptive_bytes() < planned + 64 * 1024);
}

TEST_CASE("a session's memory is fixed when it starts and reported exactly") {
  const Model& t2r = packed_reference_model("llama-t2r", DType::F32);
  const Hyperparams& hp = t2r.hparams();
  SessionOptions decode_only;
  decode_only.prefill_chunk = 1;
  decode_only.threads = 1;
  Session session(t2r, decode_only);
  // The recurrent state is L x H x r x (d_h + 1) floats, whatever the context length.
  const size_t state_bytes = size_t(hp.n_layers * hp.n_heads * hp.feature_dim() * (hp.head_dim + 1)) * 4;
  CHECK(session.bytes() >= state_bytes + size_t(hp.vocab_size) * 4);
  CHECK(session.bytes() < state_bytes + size_t(hp.vocab_size) * 4 + 64 * 1024);
  CHECK(session.max_context() == -1);
  // Prompt chunks add activation rows, not state.
  SessionOptions chunked = decode_only;
  chunked.prefill_chunk = 64;
  const size_t activations_per_token = size_t(3 * hp.dim + 2 * hp.n_heads * hp.head_dim +
                                              2 * hp.n_kv_heads * hp.head_dim +
                                              2 * hp.n_heads * hp.feature_dim() + 2 * hp.ffn_dim) * 4;
  CHECK(Session(t2r, chunked).bytes() <= session.bytes() + 64 * activations_per_token + 16 * 64);

  const Model& softmax = packed_reference_model("llama-softmax", DType::F32);
  SessionOptions small;
  small.max_context = 8;
  Session bounded(softmax, small);
  for (int i = 0; i < 8; ++i) bounded.step(1);
  CHECK_THROWS_WITH_AS(bounded.step(1), "the KV cache is full (8 positions); start a larger session", Error);
  CHECK_THROWS_AS(session.step(-1), Error);
  CHECK_THROWS_AS(session.step(int32_t(hp.vocab_size)), Error);
}

TEST_CASE("save and restore and reset reproduce the same logits") {
  for (const auto& name : reference_model_names()) {
    CAPTURE(name);
    const Model& model = packed_reference_model(name, DType::F32);
    const size_t V = size_t(model.hparams().vocab_size);
    const std::vector<int32_t> ids = {10, 20, 30, 40, 50, 60};
    Session session(model);
    session.prefill(ids.data(), 3);
    std::vector<char> saved(session.state_size());
    session.save_state(saved.data(), saved.size());
    std::vector<float> continued(session.prefill(ids.data() + 3, 3), session.logits() + V);

    Session other(model);
    other.restore_state(saved.data(), saved.size());
    CHECK(other.position() == 3);
    CHECK(std::vector<float>(other.prefill(ids.data() + 3, 3), other.logits() + V) == continued);

    session.reset();
    session.prefill(ids.data(), 6);  // one chunk instead of two: the same up to float rounding
    double max_diff = 0;
    for (size_t v = 0; v < V; ++v) max_diff = std::max(max_diff, double(std::fabs(session.logits()[v] - continued[v])));
    CHECK(max_diff < 1e-4);

    // A state is refused by another model, and when damaged.
    const Model& different = packed_reference_model(name == "llama-t2r" ? "llama-elu" : "llama-t2r", DType::F32);
    Session stranger(different);
    CHECK_THROWS_WITH_AS(stranger.restore_state(saved.data(), saved.size()),
                         "session state was saved with a different model", Error);
    CHECK_THROWS_AS(other.restore_state(saved.data(), saved.size() - 1), Error);
    std::vector<char> bad = saved;
    bad[0] = 'X';
    CHECK_THROWS_WITH_AS(other.restore_state(bad.data(), bad.size()), "not a t2r session state", Error);
    bad = saved;
    bad[8] = 9;
    CHECK_THROWS_WITH_AS(other.restore_state(bad.data(), bad.size()),
                         "session state version 9 is not supported (expected 1)", Error);
  }
}

TEST_CASE("chunked prefill gives the state and logits of token-by-token stepping") {
  for (const auto& name : reference_model_names()) {
    CAPTURE(name);
    const Model& model = packed_reference_model(name, DType::F32);
    const std::vector<int32_t>& ids = reference_outputs(name).input_ids;  // 59 tokens
    const size_t V = size_t(model.hparams().vocab_size);
    SessionOptions one_by_one;
    one_by_one.threads = 1;
    one_by_one.prefill_chunk = 1;
    Session reference(model, one_by_one);
    reference.prefill(ids.data(), ids.size());
    std::vector<char> reference_state(reference.state_size());
    reference.save_state(reference_state.data(), reference_state.size());

    for (int chunk : {7, 64}) {
      for (int threads : {1, 2}) {
        CAPTURE(chunk);
        CAPTURE(threads);
        SessionOptions options;
        options.prefill_chunk = chunk;
        options.threads = threads;
        Session session(model, options);
        session.prefill(ids.data(), ids.size());
        double logit_diff = 0;
        for (size_t v = 0; v < V; ++v) {
          logit_diff = std::max(logit_diff, double(std::fabs(session.logits()[v] - reference.logits()[v])));
        }
        CHECK(logit_diff < 1e-4);
        // The recurrent state (or KV cache) after the prompt, compared float by float.
        std::vector<char> state(session.state_size());
        session.save_state(state.data(), state.size());
        REQUIRE(state.size() == reference_state.size());
        double state_diff = 0, state_scale = 0;
        for (size_t i = 40 + V * 4; i + 4 <= state.size(); i += 4) {
          float a, b;
          std::memcpy(&a, &state[i], 4);
          std::memcpy(&b, &reference_state[i], 4);
          state_diff = std::max(state_diff, double(std::fabs(a - b)));
          state_scale = std::max(state_scale, double(std::fabs(b)));
        }
        CHECK(state_diff <= 1e-5 * state_scale);
      }
    }
  }
}

#endif
