// rwkvrt info MODEL: what a checkpoint is.
#include <cstdio>

#include "cli.h"

namespace rwkvrt::cli {
namespace {

const char* bk_dtype_name(rwkvrt_bk_dtype t) {
  return dtype_name(static_cast<DType>(t));
}

}  // namespace

void register_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "info", "Load a model and print its RWKV version, dimensions, precision, parameter count "
              "and state size");
  static ModelOptions o;
  static bool json = false;
  cmd->add_option("model", o.path, "Model file (.pth, .safetensors or rwkv.cpp .bin)")
      ->required()
      ->check(CLI::ExistingFile);
  add_model_options(cmd, o);
  cmd->add_flag("--json", json, "Print one JSON object");
  cmd->callback([] {
    auto m = load_model(o);
    const ModelConfig& c = m->config();
    const bool v4 = c.version == RwkvVersion::V4;
    if (json) {
      std::printf(
          "{\"version\": \"%s\", \"format\": \"%s\", \"layers\": %u, \"width\": %u, "
          "\"attention_width\": %u, \"ffn_width\": %u, \"heads\": %u, \"head_size\": %u, "
          "\"vocab\": %u, \"file_dtype\": \"%s\", \"weight_dtype\": \"%s\", \"parameters\": %llu, "
          "\"weight_bytes\": %llu, \"state_floats\": %llu, \"state_bytes\": %llu, "
          "\"group_norm_eps\": %g, \"initial_state\": %s, \"backend\": \"%s\"}\n",
          version_name(c.version), m->file_format().c_str(), c.n_layer, c.n_embd, c.n_att,
          c.n_ffn, c.n_head, c.head_size, c.n_vocab, dtype_name(c.matrix_dtype),
          bk_dtype_name(m->weight_dtype()), (unsigned long long)c.n_params,
          (unsigned long long)m->weight_bytes(), (unsigned long long)m->state_floats(),
          (unsigned long long)(m->state_floats() * 4), v4 ? 0.0 : double(c.group_norm_eps),
          c.has_time_state ? "true" : "false", m->device()->backend_name().c_str());
      return;
    }
    std::printf("file:          %s (%s)\n", o.path.c_str(), m->file_format().c_str());
    std::printf("version:       RWKV %s\n", version_name(c.version));
    std::printf("layers:        %u\n", c.n_layer);
    std::printf("width:         %u (attention %u, ffn %u)\n", c.n_embd, c.n_att, c.n_ffn);
    if (!v4) std::printf("heads:         %u of size %u\n", c.n_head, c.head_size);
    std::printf("vocabulary:    %u\n", c.n_vocab);
    std::printf("parameters:    %.2f M\n", double(c.n_params) / 1e6);
    std::printf("dtype:         %s in the file, %s on the device\n", dtype_name(c.matrix_dtype),
                bk_dtype_name(m->weight_dtype()));
    std::printf("weights:       %.1f MiB on backend '%s'\n", double(m->weight_bytes()) / 1048576.0,
                m->device()->backend_name().c_str());
    std::printf("state:         %llu floats (%.1f KiB)%s\n", (unsigned long long)m->state_floats(),
                double(m->state_floats()) * 4 / 1024.0,
                c.has_time_state ? ", initial state from time_state" : "");
    if (!v4) std::printf("groupnorm eps: %g\n", double(c.group_norm_eps));
  });
}

}  // namespace rwkvrt::cli
