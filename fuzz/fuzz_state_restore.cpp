// libFuzzer target: Session::restore_state on any bytes, for a tiny synthetic T2R model and its
// softmax twin (whose payload size depends on the position). A state that is accepted must save
// back to the same bytes, and the session must then step on.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "error.h"
#include "session.h"
#include "synthetic_model.h"

namespace {

struct Subject {
  std::vector<unsigned char> bytes;
  std::unique_ptr<t2r::Model> model;
  std::unique_ptr<t2r::Session> session;
};

// The same models t2r-fuzz-seeds saves its seed states from.
std::vector<Subject>& subjects() {
  static std::vector<Subject> all = [] {
    std::vector<Subject> s(2);
    t2r::bench::SyntheticConfig config;
    t2r::bench::synthetic_config("tiny", &config);
    for (size_t i = 0; i < s.size(); ++i) {
      const bool t2r = i == 0;
      s[i].bytes = t2r::bench::synthetic_model(config, t2r, t2r::DType::F32).serialize();
      s[i].model = t2r::Model::from_file(t2r::ModelFile::parse(
          std::string_view(reinterpret_cast<const char*>(s[i].bytes.data()), s[i].bytes.size()), "tiny"));
      t2r::SessionOptions options;
      options.threads = 1;
      options.max_context = 32;
      s[i].session = std::make_unique<t2r::Session>(*s[i].model, options);
    }
    return s;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::vector<unsigned char> saved;
  for (Subject& s : subjects()) {
    s.session->reset();
    try {
      s.session->restore_state(data, size);
    } catch (const t2r::Error&) {
      continue;
    }
    saved.resize(s.session->state_size());
    s.session->save_state(saved.data(), saved.size());
    if (saved.size() != size || std::memcmp(saved.data(), data, size) != 0) std::abort();
    try {
      s.session->step(1);
    } catch (const t2r::Error&) {  // a full KV cache
    }
  }
  return 0;
}
