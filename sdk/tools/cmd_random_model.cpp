// rwkvrt random-model OUT.safetensors: an RWKV-7 checkpoint of any shape with random weights, for
// trying the tools and testing integrations without a download.  Its output is noise.
#include <cstdio>
#include <map>

#include "cli.h"
#include "core/error.h"
#include "loaders/safetensors_writer.h"
#include "model/synthetic_model.h"

namespace rwkvrt::cli {

void register_random_model_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "random-model",
      "Write an RWKV-7 model with random weights (any shape) as .safetensors, for testing tools "
      "and integrations without downloading a model; it generates noise, not text");
  static std::string out, dtype = "bf16";
  static SyntheticShape shape;
  static bool quiet = false;
  shape.n_layer = 2;
  shape.n_embd = 128;
  shape.n_vocab = 256;
  shape.head_size = 64;
  cmd->add_option("output", out, "Output .safetensors file")->required();
  cmd->add_option("--layers", shape.n_layer, "Layers")->check(CLI::Range(1, 256))->capture_default_str();
  cmd->add_option("--width", shape.n_embd, "Model width C (a multiple of the head size)")
      ->check(CLI::Range(16, 16384))
      ->capture_default_str();
  cmd->add_option("--vocab", shape.n_vocab, "Vocabulary size")->check(CLI::Range(2, 1 << 20))->capture_default_str();
  cmd->add_option("--head-size", shape.head_size, "Head size N")->check(CLI::Range(1, 1024))->capture_default_str();
  cmd->add_option("--dtype", dtype, "Matrix precision: f32, bf16, f16")
      ->check(CLI::IsMember({"f32", "bf16", "f16"}))
      ->capture_default_str();
  cmd->add_option("--seed", shape.seed, "Random seed")->capture_default_str();
  cmd->add_flag("-q,--quiet", quiet, "No progress bar");
  cmd->callback([] {
    shape.matrix_dtype = dtype == "f32" ? DType::F32 : dtype == "bf16" ? DType::BF16 : DType::F16;
    const TensorSet tensors = make_synthetic_v7(shape);
    std::map<std::string, std::string> meta = {{"rwkvrt.version", "7.0"},
                                               {"rwkvrt.random_weights", "true"}};
    if (shape.n_vocab == 256) meta["rwkvrt.tokenizer"] = "byte";
    auto bar = progress_bar(quiet);
    write_safetensors(out, tensors, meta,
                      bar ? std::function<bool(float)>([&](float f) { return bar(f, "writing"); })
                          : std::function<bool(float)>());
    progress_done(quiet);
    std::fprintf(stderr, "wrote %s: random RWKV-7, %u layers, width %u, vocab %u\n", out.c_str(),
                 shape.n_layer, shape.n_embd, shape.n_vocab);
  });
}

}  // namespace rwkvrt::cli
