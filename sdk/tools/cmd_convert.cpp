// rwkvrt convert IN OUT.safetensors: any loadable checkpoint to safetensors with rwkvrt metadata.
#include <cstdio>
#include <map>

#include "cli.h"
#include "core/error.h"
#include "loaders/checkpoint_readers.h"
#include "loaders/safetensors_writer.h"
#include "model/model_config.h"

namespace rwkvrt::cli {
namespace {

// The tokenizer a vocabulary size implies for published RWKV models.
std::string guess_tokenizer(uint32_t vocab) {
  if (vocab == 65536) return "world";
  if (vocab == 256) return "byte";
  if (vocab == 50277 || vocab == 50304) return "neox";
  return "";
}

}  // namespace

void register_convert_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "convert",
      "Write a model (.pth, .safetensors or rwkv.cpp .bin) as .safetensors with rwkvrt's metadata "
      "(RWKV version, GroupNorm eps, tokenizer kind).  Tensors are copied as stored, so the result "
      "computes bit-identical logits; quantised rwkv.cpp matrices stay quantised");
  static std::string in, out, tokenizer;
  static float eps = 0.0f;
  static bool quiet = false;
  cmd->add_option("input", in, "Model to convert")->required()->check(CLI::ExistingFile);
  cmd->add_option("output", out, "Output .safetensors file (written atomically)")->required();
  cmd->add_option("--tokenizer", tokenizer,
                  "Tokenizer kind to record: world, byte, neox (default: guessed from the vocab)");
  cmd->add_option("--gn-eps", eps,
                  "GroupNorm eps to record (default: the input's: 64e-5, or 1e-5 for rwkv.cpp v5)");
  cmd->add_flag("-q,--quiet", quiet, "No progress bar");
  cmd->callback([] {
    const TensorSet tensors = read_checkpoint(in);
    const ModelConfig config = detect_config(tensors);
    std::map<std::string, std::string> meta;
    meta["rwkvrt.version"] = version_name(config.version);
    if (eps > 0.0f) {
      meta["rwkvrt.group_norm_eps"] = fmt::format("{}", eps);
    } else if (auto it = tensors.metadata.find("rwkvrt.group_norm_eps");
               it != tensors.metadata.end()) {
      meta["rwkvrt.group_norm_eps"] = it->second;
    } else if (config.version != RwkvVersion::V4) {
      meta["rwkvrt.group_norm_eps"] = fmt::format("{}", config.group_norm_eps);
    }
    auto tk = tensors.metadata.find("rwkvrt.tokenizer");
    const std::string kind = !tokenizer.empty() ? tokenizer
                             : tk != tensors.metadata.end() ? tk->second
                                                            : guess_tokenizer(config.n_vocab);
    if (!kind.empty()) meta["rwkvrt.tokenizer"] = kind;
    auto src = tensors.metadata.find("format");
    if (src != tensors.metadata.end()) meta["rwkvrt.source_format"] = src->second;
    auto bar = progress_bar(quiet);
    write_safetensors(out, tensors, meta,
                      bar ? std::function<bool(float)>([&](float f) { return bar(f, "writing"); })
                          : std::function<bool(float)>());
    progress_done(quiet);
    std::fprintf(stderr, "wrote %s: RWKV %s, %zu tensors\n", out.c_str(),
                 version_name(config.version), tensors.size());
  });
}

}  // namespace rwkvrt::cli
