// The backend registry: discovery, explicit loading by path, ABI negotiation and the messages a
// user sees when a plugin cannot be used.
#include <gtest/gtest.h>

#include <string>

#include "core/backend_registry.h"
#include "core/error.h"

namespace rwkvrt {
namespace {

std::string fake(const std::string& name) {
  return std::string(RWKVRT_FAKE_PLUGIN_DIR) + "/librwkvrt-backend-" + name + ".so";
}

TEST(PluginRegistry, FindsTheCpuBackend) {
  BackendRegistry& r = BackendRegistry::instance();
  const BackendEntry cpu = r.select("cpu");
  EXPECT_EQ(cpu.name, "cpu");
  EXPECT_TRUE(cpu.usable());
  EXPECT_EQ(cpu.abi_version, 1u);
  EXPECT_EQ(cpu.device_count, 1);
  EXPECT_EQ(r.select("").name, r.select("auto").name);
}

TEST(PluginRegistry, RefusesAPluginOfAnotherAbiAndSaysWhichVersions) {
  try {
    BackendRegistry::instance().load(fake("abifuture"));
    FAIL() << "an ABI 7..9 plugin was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), RWKVRT_ERR_ABI_MISMATCH);
    EXPECT_NE(std::string(e.what()).find("7..9 offered"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("speaks 1..1"), std::string::npos) << e.what();
  }
}

// Entries appended to the version-1 table are read only when struct_size covers them: a plugin
// built against the first revision loads (and lacks them); a table shorter than that is refused.
TEST(PluginRegistry, AcceptsAFirstRevisionTableAndRefusesAShorterOne) {
  BackendRegistry& r = BackendRegistry::instance();
  const BackendEntry e = r.entry(r.load(fake("firstrevision")));
  ASSERT_NE(e.api, nullptr);
  EXPECT_EQ(e.api->struct_size, RWKVRT_BACKEND_V1_MIN_SIZE);
  EXPECT_FALSE(RWKVRT_BACKEND_V1_HAS(e.api, matmul_bias_act));
  EXPECT_EQ(e.unavailable_reason, "a test plugin");
  try {
    r.load(fake("truncatedtable"));
    FAIL() << "a table shorter than the first revision's was accepted";
  } catch (const Error& err) {
    EXPECT_EQ(err.status(), RWKVRT_ERR_ABI_MISMATCH);
    EXPECT_NE(std::string(err.what()).find("malformed"), std::string::npos) << err.what();
  }
}

TEST(PluginRegistry, RefusesALibraryWithoutTheEntryPoint) {
  try {
    BackendRegistry::instance().load(fake("noentry"));
    FAIL() << "a library without rwkvrt_backend_negotiate was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), RWKVRT_ERR_FORMAT);
    EXPECT_NE(std::string(e.what()).find("rwkvrt_backend_negotiate"), std::string::npos);
  }
}

TEST(PluginRegistry, MissingFileIsAnIoError) {
  try {
    BackendRegistry::instance().load(fake("does-not-exist"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), RWKVRT_ERR_IO);
    EXPECT_NE(std::string(e.what()).find("cannot load"), std::string::npos);
  }
}

TEST(PluginRegistry, AnUnusablePluginIsListedWithItsReasonAndNeverSelected) {
  BackendRegistry& r = BackendRegistry::instance();
  const size_t index = r.load(fake("nodevice"));
  EXPECT_EQ(r.load(fake("nodevice")), index) << "loading the same file twice adds it twice";
  const BackendEntry e = r.entry(index);
  EXPECT_EQ(e.name, "nodevice");
  EXPECT_FALSE(e.usable());
  EXPECT_EQ(e.unavailable_reason, "no fake accelerator is installed");
  EXPECT_NE(r.select("").name, "nodevice");
  try {
    r.select("nodevice");
    FAIL();
  } catch (const Error& err) {
    EXPECT_EQ(err.status(), RWKVRT_ERR_NO_BACKEND);
    EXPECT_NE(std::string(err.what()).find("no fake accelerator is installed"), std::string::npos);
  }
}

TEST(PluginRegistry, UnknownBackendNameListsWhatExists) {
  try {
    BackendRegistry::instance().select("quantum");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), RWKVRT_ERR_NO_BACKEND);
    EXPECT_NE(std::string(e.what()).find("'quantum'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("cpu"), std::string::npos);
  }
}

}  // namespace
}  // namespace rwkvrt
