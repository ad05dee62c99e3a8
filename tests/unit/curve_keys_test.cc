// CURVE key files and allow-lists on disk: the round trip, and the clear errors for files that are
// broken, mismatched or readable by others.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/wire/curve_auth.h"

namespace clisc {
namespace {

namespace fs = std::filesystem;

class CurveKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("clisc_curve_keys_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path Write(const std::string& name, const std::string& content, mode_t mode = 0600) {
    const fs::path path = dir_ / name;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << content;
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }

  static CurveKeyPair NewKeys() {
    auto keys = GenerateCurveKeyPair();
    EXPECT_TRUE(keys.ok()) << keys.status().ToString();
    return *keys;
  }

  static mode_t ModeOf(const fs::path& path) {
    struct stat info {};
    EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
    return info.st_mode & 07777;
  }

  fs::path dir_;
};

TEST_F(CurveKeysTest, GeneratesDistinctZ85KeyPairs) {
  const CurveKeyPair a = NewKeys();
  const CurveKeyPair b = NewKeys();
  EXPECT_EQ(a.public_z85.size(), 40u);
  EXPECT_EQ(a.secret_z85.size(), 40u);
  EXPECT_NE(a.public_z85, a.secret_z85);
  EXPECT_NE(a.public_z85, b.public_z85);
  EXPECT_NE(a.secret_z85, b.secret_z85);
}

TEST_F(CurveKeysTest, RoundTripsThroughKeyAndPubFiles) {
  const CurveKeyPair keys = NewKeys();
  ASSERT_TRUE(WriteCurveKeyFiles(dir_ / "sub" / "worker1", keys).ok());
  EXPECT_EQ(ModeOf(dir_ / "sub" / "worker1.key"), 0600u);

  auto both = ReadCurveKeyFile(dir_ / "sub" / "worker1.key");
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  EXPECT_EQ(both->public_z85, keys.public_z85);
  EXPECT_EQ(both->secret_z85, keys.secret_z85);

  auto pub = ReadCurveKeyFile(dir_ / "sub" / "worker1.pub");
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  EXPECT_EQ(pub->public_z85, keys.public_z85);
  EXPECT_TRUE(pub->secret_z85.empty());
}

TEST_F(CurveKeysTest, RefusesToOverwriteUnlessAsked) {
  const CurveKeyPair first = NewKeys();
  const CurveKeyPair second = NewKeys();
  ASSERT_TRUE(WriteCurveKeyFiles(dir_ / "node", first).ok());
  Status again = WriteCurveKeyFiles(dir_ / "node", second);
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(again.message().find((dir_ / "node.key").string()), std::string::npos)
      << again.message();
  EXPECT_EQ(ReadCurveKeyFile(dir_ / "node.key")->secret_z85, first.secret_z85);

  ASSERT_TRUE(WriteCurveKeyFiles(dir_ / "node", second, /*overwrite=*/true).ok());
  EXPECT_EQ(ReadCurveKeyFile(dir_ / "node.key")->secret_z85, second.secret_z85);
  EXPECT_EQ(ReadCurveKeyFile(dir_ / "node.pub")->public_z85, second.public_z85);
  EXPECT_EQ(ModeOf(dir_ / "node.key"), 0600u);
}

TEST_F(CurveKeysTest, RefusesMismatchedPairOnWrite) {
  CurveKeyPair mixed = NewKeys();
  mixed.public_z85 = NewKeys().public_z85;
  EXPECT_EQ(WriteCurveKeyFiles(dir_ / "mixed", mixed).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir_ / "mixed.key"));
}

TEST_F(CurveKeysTest, RefusesSecretKeyReadableByOthers) {
  const CurveKeyPair keys = NewKeys();
  ASSERT_TRUE(WriteCurveKeyFiles(dir_ / "loose", keys).ok());
  const fs::path key_file = dir_ / "loose.key";
  for (mode_t mode : {0640, 0604, 0620}) {
    ASSERT_EQ(::chmod(key_file.c_str(), mode), 0);
    auto read = ReadCurveKeyFile(key_file);
    ASSERT_FALSE(read.ok()) << std::oct << mode;
    EXPECT_EQ(read.status().code(), StatusCode::kPermissionDenied);
    EXPECT_NE(read.status().message().find(key_file.string()), std::string::npos);
    EXPECT_NE(read.status().message().find("chmod 600"), std::string::npos)
        << read.status().message();
  }
  // A public key file may be world-readable.
  ASSERT_EQ(::chmod((dir_ / "loose.pub").c_str(), 0644), 0);
  EXPECT_TRUE(ReadCurveKeyFile(dir_ / "loose.pub").ok());
}

TEST_F(CurveKeysTest, NamesFileAndLineOfBadContent) {
  const CurveKeyPair keys = NewKeys();
  struct Case {
    std::string content;
    std::string expected;  // in the message, after "<file>:<line>" where there is a line
    int line;
  };
  const Case cases[] = {
      {"# comment\npublic = " + keys.public_z85.substr(0, 39) + "\n", "got 39", 2},
      {"public = " + keys.public_z85 + "x\n", "got 41", 1},
      {"\npublic = " + keys.public_z85.substr(0, 9) + "~" + keys.public_z85.substr(10) + "\n",
       "character 10 is not in the Z85 alphabet", 2},
      // Fixed text: a random key may itself contain '='.
      {"public " + std::string(40, 'a') + "\n", "expected 'public = <key>'", 1},
      {"private = " + keys.secret_z85 + "\n", "unknown entry 'private'", 1},
      {"public = " + keys.public_z85 + "\npublic = " + keys.public_z85 + "\n", "second 'public'",
       2},
      {"# nothing here\n\n", "holds no key", 0},
  };
  int index = 0;
  for (const Case& c : cases) {
    const fs::path path = Write("bad" + std::to_string(index++) + ".pub", c.content);
    auto read = ReadCurveKeyFile(path);
    ASSERT_FALSE(read.ok()) << c.content;
    EXPECT_EQ(read.status().code(), StatusCode::kInvalidArgument) << c.content;
    const std::string where =
        c.line > 0 ? path.string() + ":" + std::to_string(c.line) : path.string();
    EXPECT_NE(read.status().message().find(where), std::string::npos) << read.status().message();
    EXPECT_NE(read.status().message().find(c.expected), std::string::npos)
        << read.status().message();
  }
}

TEST_F(CurveKeysTest, ErrorsNeverQuoteTheSecret) {
  const CurveKeyPair keys = NewKeys();
  const std::string broken = keys.secret_z85.substr(0, 39) + "~";
  auto read = ReadCurveKeyFile(Write("broken.key", "secret = " + broken + "\n"));
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message().find(broken.substr(0, 20)), std::string::npos)
      << read.status().message();
}

TEST_F(CurveKeysTest, DetectsPublicKeyThatDoesNotMatchTheSecret) {
  const CurveKeyPair keys = NewKeys();
  const CurveKeyPair other = NewKeys();
  auto read = ReadCurveKeyFile(
      Write("mixed.key", "public = " + other.public_z85 + "\nsecret = " + keys.secret_z85 + "\n"));
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.status().message().find("does not belong"), std::string::npos);

  // A secret alone is enough: the public half is derived from it.
  auto derived = ReadCurveKeyFile(Write("secret_only.key", "secret = " + keys.secret_z85 + "\n"));
  ASSERT_TRUE(derived.ok()) << derived.status().ToString();
  EXPECT_EQ(derived->public_z85, keys.public_z85);
}

TEST_F(CurveKeysTest, BareKeyLineIsAPublicKey) {
  const CurveKeyPair keys = NewKeys();
  auto read =
      ReadCurveKeyFile(Write("pasted.pub", "# from clisc keygen\n" + keys.public_z85 + "\n", 0644));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->public_z85, keys.public_z85);
  EXPECT_TRUE(read->secret_z85.empty());
}

TEST_F(CurveKeysTest, MissingFileIsNotFound) {
  auto read = ReadCurveKeyFile(dir_ / "absent.key");
  EXPECT_EQ(read.status().code(), StatusCode::kNotFound);
  EXPECT_NE(read.status().message().find("absent.key"), std::string::npos);
  EXPECT_EQ(ReadCurveAllowList(dir_ / "absent").status().code(), StatusCode::kNotFound);
}

TEST_F(CurveKeysTest, AllowListFileTakesBareAndNamedKeysWithComments) {
  const CurveKeyPair a = NewKeys(), b = NewKeys(), c = NewKeys();
  const fs::path path = Write("workers.txt",
                              "# workers of rack 1\n"
                              "\n" +
                                  a.public_z85 + "\n  public = " + b.public_z85 +
                                  "  \n"
                                  "#" +
                                  c.public_z85 + "\n" + a.public_z85 + "\n",
                              0644);
  auto allowed = ReadCurveAllowList(path);
  ASSERT_TRUE(allowed.ok()) << allowed.status().ToString();
  EXPECT_EQ(*allowed, (std::set<std::string>{a.public_z85, b.public_z85}));
}

TEST_F(CurveKeysTest, AllowListDirectoryReadsOnlyPubFiles) {
  const CurveKeyPair a = NewKeys(), b = NewKeys(), c = NewKeys();
  ASSERT_TRUE(WriteCurveKeyFiles(dir_ / "allow" / "worker1", a).ok());
  ASSERT_TRUE(WriteCurveKeyFiles(dir_ / "allow" / "worker2", b).ok());
  Write("allow/README", "not a key\n", 0644);
  Write("allow/worker3.pub.disabled", c.public_z85 + "\n", 0644);
  auto allowed = ReadCurveAllowList(dir_ / "allow");
  ASSERT_TRUE(allowed.ok()) << allowed.status().ToString();
  EXPECT_EQ(*allowed, (std::set<std::string>{a.public_z85, b.public_z85}));
}

TEST_F(CurveKeysTest, AllowListRejectsSecretsBadLinesAndEmptiness) {
  const CurveKeyPair keys = NewKeys();
  auto secret = ReadCurveAllowList(Write("with_secret.txt", "secret = " + keys.secret_z85 + "\n"));
  ASSERT_FALSE(secret.ok());
  EXPECT_NE(secret.status().message().find("with_secret.txt:1"), std::string::npos);
  EXPECT_NE(secret.status().message().find("public keys only"), std::string::npos);

  auto bad = ReadCurveAllowList(
      Write("bad.txt", keys.public_z85 + "\n" + "A" + keys.public_z85.substr(2) + "\n", 0644));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.txt:2"), std::string::npos) << bad.status().message();

  auto empty = ReadCurveAllowList(Write("empty.txt", "# nobody yet\n", 0644));
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("no public keys"), std::string::npos);

  fs::create_directories(dir_ / "empty_dir");
  auto empty_dir = ReadCurveAllowList(dir_ / "empty_dir");
  ASSERT_FALSE(empty_dir.ok());
  EXPECT_NE(empty_dir.status().message().find("no .pub files"), std::string::npos);
}

}  // namespace
}  // namespace clisc
