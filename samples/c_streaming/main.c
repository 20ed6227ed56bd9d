/*
 * c_streaming: load a model, feed a prompt, and print the continuation piece by piece as it is
 * generated, with the callback API of the plain C ABI.
 *
 *   c_streaming MODEL [PROMPT] [MAX_TOKENS]
 *
 * Sampling is greedy, so a run prints the same text every time (the same as
 * `rwkvrt generate --greedy`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rwkvrt/rwkvrt.h"

/* Called by rwkvrt_session_generate for every piece of text.  A piece may be empty (bytes held
 * back until a UTF-8 character or a possible stop string is complete).  Returning nonzero would
 * stop the generation. */
static int print_piece(void* user_data, const rwkvrt_generate_piece* piece) {
  (void)user_data;
  fwrite(piece->text, 1, piece->text_len, stdout);
  fflush(stdout);
  return 0;
}

static int report(const char* what, rwkvrt_status status) {
  fprintf(stderr, "c_streaming: %s failed (%s): %s\n", what, rwkvrt_status_name(status),
          rwkvrt_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: %s MODEL [PROMPT] [MAX_TOKENS]\n", argv[0]);
    return 2;
  }
  const char* model_path = argv[1];
  const char* prompt = argc > 2 ? argv[2] : "In the beginning";
  const unsigned long max_tokens = argc > 3 ? strtoul(argv[3], NULL, 10) : 100;

  rwkvrt_model* model = NULL;
  rwkvrt_session* session = NULL;
  int exit_code = 1;
  rwkvrt_status status;

  /* NULL parameters: the best backend available, all cores, the checkpoint's precision. */
  if ((status = rwkvrt_model_load(model_path, NULL, &model)) != RWKVRT_OK) {
    report("loading the model", status);
    goto done;
  }
  if ((status = rwkvrt_session_create(model, &session)) != RWKVRT_OK) {
    report("creating a session", status);
    goto done;
  }

  /* Parameter structs come from their *_default() function; then set what differs. */
  rwkvrt_sampling_params sampling = rwkvrt_sampling_params_default();
  sampling.temperature = 0.0f; /* greedy */
  if ((status = rwkvrt_session_set_sampling(session, &sampling)) != RWKVRT_OK) {
    report("setting the sampler", status);
    goto done;
  }

  /* The prompt is encoded with the model's tokenizer and fed in one pass. */
  if ((status = rwkvrt_session_prompt(session, prompt, strlen(prompt))) != RWKVRT_OK) {
    report("feeding the prompt", status);
    goto done;
  }

  rwkvrt_generate_params params = rwkvrt_generate_params_default();
  params.max_tokens = (uint32_t)max_tokens;
  rwkvrt_finish_reason finish = RWKVRT_FINISH_NONE;
  if ((status = rwkvrt_session_generate(session, &params, print_piece, NULL, &finish)) !=
      RWKVRT_OK) {
    report("generating", status);
    goto done;
  }
  printf("\n");
  exit_code = 0;

done:
  /* Sessions first, then the model they belong to; freeing NULL is a no-op. */
  rwkvrt_session_free(session);
  rwkvrt_model_free(model);
  return exit_code;
}
