// Load generator for rwkvrtd: CLIENTS concurrent one-off Generate streams (seeds 1..CLIENTS),
// each generating TOKENS tokens after PROMPT, started together.  Written in C++ so that the
// client side is never the bottleneck of the measurement.
//
//   rwkvrtd_loadgen ADDRESS CLIENTS TOKENS PROMPT
//   Prints {"clients": N, "tokens": total, "seconds": s, "tokens_per_s": r, "failures": f}.
#include "rwkvrt/v1/runtime.grpc.pb.h"

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

namespace v1 = rwkvrt::v1;

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: rwkvrtd_loadgen ADDRESS CLIENTS TOKENS PROMPT\n");
    return 2;
  }
  const std::string address = argv[1];
  const size_t clients = std::stoul(argv[2]);
  const uint32_t tokens = static_cast<uint32_t>(std::stoul(argv[3]));
  const std::string prompt = argv[4];

  // One channel per client: separate HTTP/2 connections, as separate apps would have.
  std::vector<std::unique_ptr<v1::Runtime::Stub>> stubs;
  for (size_t i = 0; i < clients; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10));
    stubs.push_back(v1::Runtime::NewStub(channel));
  }

  std::mutex mutex;
  std::condition_variable go;
  bool started = false;
  std::atomic<uint64_t> generated{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (size_t i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      {
        std::unique_lock lock(mutex);
        go.wait(lock, [&] { return started; });
      }
      v1::GenerateRequest request;
      request.set_text(prompt);
      request.set_max_tokens(tokens);
      request.set_stop_at_eos(false);
      request.mutable_sampling()->set_seed(i + 1);
      grpc::ClientContext context;
      auto stream = stubs[i]->Generate(&context, request);
      v1::GenerateEvent event;
      while (stream->Read(&event)) {
        if (event.has_final()) generated += event.final().completion_tokens();
      }
      if (!stream->Finish().ok()) ++failures;
    });
  }
  const auto t0 = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex);
    started = true;
  }
  go.notify_all();
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << nlohmann::json{{"clients", clients}, {"tokens", generated.load()}, {"seconds", seconds},
                              {"tokens_per_s", generated.load() / seconds}, {"failures", failures.load()}}
                   .dump()
            << "\n";
  return failures.load() == 0 ? 0 : 1;
}
