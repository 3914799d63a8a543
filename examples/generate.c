/* The smallest complete use of the C API: load a model, feed a prompt, sample, stream the text,
 * and save the state so that a later run could resume from it.
 *
 *   ./build/example-generate models/default.t2r "In the beginning" 32
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t2r.h"

static int fail(const char* what) {
  fprintf(stderr, "%s: %s\n", what, t2r_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s MODEL.t2r PROMPT TOKENS\n", argv[0]);
    return 2;
  }
  const char* prompt = argv[2];
  const int tokens = atoi(argv[3]);

  t2r_model* model = t2r_model_load(argv[1]);
  if (!model) return fail("load");
  t2r_session* session = t2r_session_create(model, NULL);
  if (!session) return fail("session");
  printf("[session: %zu bytes, fixed for any length]\n", t2r_session_bytes(session));

  int32_t ids[256];
  const int64_t n = t2r_tokenize(model, prompt, strlen(prompt), ids, 256);
  if (n < 1 || n > 256) return fail("tokenize (needs 1..256 tokens)");
  const float* logits = t2r_prefill(session, ids, (size_t)n);
  if (!logits) return fail("prefill");

  t2r_sampler_options options = t2r_sampler_default_options();
  options.temperature = 0.7f;
  options.top_p = 0.9f;
  options.seed = 1;
  t2r_sampler* sampler = t2r_sampler_create(model, &options);
  t2r_text_stream* text = t2r_text_stream_create(model);
  if (!sampler || !text) return fail("sampler");

  fputs(prompt, stdout);
  size_t length;
  for (int i = 0; i < tokens; ++i) {
    const int32_t next = t2r_sample(sampler, logits);
    const char* piece = t2r_text_stream_push(text, next, &length);
    fwrite(piece, 1, length, stdout);
    logits = t2r_step(session, next);
    if (!logits) return fail("step");
  }
  const char* rest = t2r_text_stream_finish(text, &length);
  fwrite(rest, 1, length, stdout);
  putchar('\n');

  const int64_t state_bytes = t2r_state_save(session, NULL, 0);
  void* state = malloc((size_t)state_bytes);
  if (!state || t2r_state_save(session, state, (size_t)state_bytes) != state_bytes) return fail("save");
  printf("[state after %lld tokens: %lld bytes]\n", (long long)t2r_session_position(session), (long long)state_bytes);
  free(state);

  t2r_text_stream_free(text);
  t2r_sampler_free(sampler);
  t2r_session_free(session);
  t2r_model_free(model);
  return 0;
}
