// rwkvrt: the command-line tool of the rwkvrt SDK.
#include <cstdio>

#include "cli.h"
#include "core/error.h"
#include "rwkvrt/rwkvrt.h"

int main(int argc, char** argv) {
  CLI::App app{
      "rwkvrt: run RWKV language models (v4, v5, v6, v7) from .pth, .safetensors or rwkv.cpp "
      ".bin files.\nEach command has its own --help."};
  app.set_version_flag("--version", std::string("rwkvrt ") + RWKVRT_VERSION_STRING);
  app.require_subcommand(1);
  rwkvrt::cli::register_backends_command(app);
  rwkvrt::cli::register_info_command(app);
  rwkvrt::cli::register_logits_command(app);
  rwkvrt::cli::register_bench_command(app);
  rwkvrt::cli::register_convert_command(app);
  rwkvrt::cli::register_random_model_command(app);
  rwkvrt::cli::register_generate_command(app);
  rwkvrt::cli::register_chat_command(app);
  rwkvrt::cli::register_tokenize_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const rwkvrt::Error& e) {
    std::fprintf(stderr, "rwkvrt: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rwkvrt: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
