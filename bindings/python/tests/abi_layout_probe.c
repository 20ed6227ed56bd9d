/* Prints the C layout of every struct of rwkvrt.h, one line per field ("struct field offset
 * size") and per struct ("struct - 0 sizeof"), so test_abi.py can check that the ctypes mirror in
 * rwkvrt/_lib.py matches the compiler's layout exactly.  Needs only the header. */
#include <stddef.h>
#include <stdio.h>

#include "rwkvrt/rwkvrt.h"

#define FIELD(s, f) \
  printf("%s %s %zu %zu\n", #s, #f, offsetof(s, f), sizeof(((s*)0)->f))
#define SIZE(s) printf("%s - 0 %zu\n", #s, sizeof(s))

int main(void) {
  SIZE(rwkvrt_backend_info);
  FIELD(rwkvrt_backend_info, struct_size);
  FIELD(rwkvrt_backend_info, name);
  FIELD(rwkvrt_backend_info, description);
  FIELD(rwkvrt_backend_info, path);
  FIELD(rwkvrt_backend_info, abi_version);
  FIELD(rwkvrt_backend_info, score);
  FIELD(rwkvrt_backend_info, device_count);
  FIELD(rwkvrt_backend_info, unavailable_reason);

  SIZE(rwkvrt_device_info);
  FIELD(rwkvrt_device_info, struct_size);
  FIELD(rwkvrt_device_info, name);
  FIELD(rwkvrt_device_info, memory_total);
  FIELD(rwkvrt_device_info, memory_free);

  SIZE(rwkvrt_model_params);
  FIELD(rwkvrt_model_params, struct_size);
  FIELD(rwkvrt_model_params, backend);
  FIELD(rwkvrt_model_params, device);
  FIELD(rwkvrt_model_params, n_threads);
  FIELD(rwkvrt_model_params, weights);
  FIELD(rwkvrt_model_params, group_norm_eps);
  FIELD(rwkvrt_model_params, progress);
  FIELD(rwkvrt_model_params, progress_user_data);
  FIELD(rwkvrt_model_params, tokenizer_path);
  FIELD(rwkvrt_model_params, matmul_precision);

  SIZE(rwkvrt_model_info);
  FIELD(rwkvrt_model_info, struct_size);
  FIELD(rwkvrt_model_info, rwkv_version);
  FIELD(rwkvrt_model_info, version_name);
  FIELD(rwkvrt_model_info, file_format);
  FIELD(rwkvrt_model_info, n_layer);
  FIELD(rwkvrt_model_info, n_embd);
  FIELD(rwkvrt_model_info, n_att);
  FIELD(rwkvrt_model_info, n_ffn);
  FIELD(rwkvrt_model_info, n_head);
  FIELD(rwkvrt_model_info, head_size);
  FIELD(rwkvrt_model_info, n_vocab);
  FIELD(rwkvrt_model_info, file_dtype);
  FIELD(rwkvrt_model_info, weight_dtype);
  FIELD(rwkvrt_model_info, n_params);
  FIELD(rwkvrt_model_info, weight_bytes);
  FIELD(rwkvrt_model_info, state_floats);
  FIELD(rwkvrt_model_info, group_norm_eps);
  FIELD(rwkvrt_model_info, backend);
  FIELD(rwkvrt_model_info, device);
  FIELD(rwkvrt_model_info, has_initial_state);

  SIZE(rwkvrt_state_tensor_info);
  FIELD(rwkvrt_state_tensor_info, struct_size);
  FIELD(rwkvrt_state_tensor_info, name);
  FIELD(rwkvrt_state_tensor_info, offset);
  FIELD(rwkvrt_state_tensor_info, n_dims);
  FIELD(rwkvrt_state_tensor_info, shape);

  SIZE(rwkvrt_tokenizer_info);
  FIELD(rwkvrt_tokenizer_info, struct_size);
  FIELD(rwkvrt_tokenizer_info, kind);
  FIELD(rwkvrt_tokenizer_info, vocab_size);
  FIELD(rwkvrt_tokenizer_info, eos_id);

  SIZE(rwkvrt_sampling_params);
  FIELD(rwkvrt_sampling_params, struct_size);
  FIELD(rwkvrt_sampling_params, mode);
  FIELD(rwkvrt_sampling_params, temperature);
  FIELD(rwkvrt_sampling_params, top_k);
  FIELD(rwkvrt_sampling_params, top_p);
  FIELD(rwkvrt_sampling_params, min_p);
  FIELD(rwkvrt_sampling_params, repetition_penalty);
  FIELD(rwkvrt_sampling_params, presence_penalty);
  FIELD(rwkvrt_sampling_params, frequency_penalty);
  FIELD(rwkvrt_sampling_params, penalty_decay);
  FIELD(rwkvrt_sampling_params, penalty_last_n);
  FIELD(rwkvrt_sampling_params, seed);
  FIELD(rwkvrt_sampling_params, banned);
  FIELD(rwkvrt_sampling_params, n_banned);
  FIELD(rwkvrt_sampling_params, logit_bias_ids);
  FIELD(rwkvrt_sampling_params, logit_bias_values);
  FIELD(rwkvrt_sampling_params, n_logit_bias);

  SIZE(rwkvrt_generate_params);
  FIELD(rwkvrt_generate_params, struct_size);
  FIELD(rwkvrt_generate_params, max_tokens);
  FIELD(rwkvrt_generate_params, stop);
  FIELD(rwkvrt_generate_params, n_stop);
  FIELD(rwkvrt_generate_params, stop_at_eos);

  SIZE(rwkvrt_generate_piece);
  FIELD(rwkvrt_generate_piece, text);
  FIELD(rwkvrt_generate_piece, text_len);
  FIELD(rwkvrt_generate_piece, token);
  FIELD(rwkvrt_generate_piece, finish);
  FIELD(rwkvrt_generate_piece, n_generated);
  return 0;
}
