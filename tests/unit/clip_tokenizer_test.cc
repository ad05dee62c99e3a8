// CLIP's BPE tokenizer against shared/fixtures/clip/tokenizer_cases.json: the exact output of
// OpenAI's clip.tokenize for 45 strings, with every intermediate stage for diagnostics.
#include "workers/text/clip_tokenizer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "workers/text/clip_text_clean.h"

namespace clisc::text {
namespace {

namespace fs = std::filesystem;

fs::path FixtureDir() {
  const char* env = std::getenv("CLISC_FIXTURES");
  const fs::path root = env && *env ? fs::path(env) : fs::path(CLISC_FIXTURES_DEFAULT);
  return root / "clip";
}

bool FixturesRequired() {
  const char* env = std::getenv("CLISC_REQUIRE_FIXTURES");
  return env && std::string(env) == "1";
}

// The JSON text of a case may not survive a JSON parser byte for byte; the hex field does.
std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

class ClipTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vocab_ = FixtureDir() / "bpe_simple_vocab_16e6.txt.gz";
    cases_file_ = FixtureDir() / "tokenizer_cases.json";
    if (!fs::exists(vocab_) || !fs::exists(cases_file_)) {
      if (FixturesRequired()) FAIL() << "missing CLIP fixtures under " << FixtureDir();
      GTEST_SKIP() << "CLIP fixtures not found under " << FixtureDir();
    }
    std::ifstream in(cases_file_);
    fixture_ = nlohmann::json::parse(in);
    tmp_ = fs::temp_directory_path() /
           ("clip_tokenizer_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(tmp_);
  }
  void TearDown() override {
    if (!tmp_.empty()) fs::remove_all(tmp_);
  }

  fs::path vocab_, cases_file_, tmp_;
  nlohmann::json fixture_;
};

TEST_F(ClipTokenizerTest, EveryFixtureCaseMatchesClipTokenize) {
  StatusOr<ClipTokenizer> tok = ClipTokenizer::Load(vocab_);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const int context = fixture_.at("context_length").get<int>();
  ASSERT_EQ(fixture_.at("cases").size(), 45u);
  int exact = 0;
  for (const nlohmann::json& c : fixture_.at("cases")) {
    const std::string id = c.at("id").get<std::string>();
    SCOPED_TRACE("case " + id);
    const std::string text = FromHex(c.at("text_utf8_hex").get<std::string>());

    // Stages first: when ids differ these say where.
    EXPECT_EQ(FtfyFixText(text), c.at("ftfy_fixed").get<std::string>());
    const std::string basic = BasicClean(text);
    EXPECT_EQ(basic, c.at("basic_clean").get<std::string>());
    const std::string lowered = WhitespaceCleanLower(basic);
    EXPECT_EQ(lowered, c.at("whitespace_clean_lower").get<std::string>());
    const std::vector<std::string> pretokens = PreTokenize(lowered);
    EXPECT_EQ(pretokens, c.at("pretokens").get<std::vector<std::string>>());
    std::vector<std::string> bpe;
    for (const std::string& p : pretokens) bpe.push_back(Join(tok->Bpe(p), " "));
    EXPECT_EQ(bpe, c.at("bpe").get<std::vector<std::string>>());

    StatusOr<std::vector<int32_t>> ids = tok->Encode(text);
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    const bool ids_ok = *ids == c.at("ids").get<std::vector<int32_t>>();
    EXPECT_TRUE(ids_ok);

    StatusOr<std::vector<std::vector<int32_t>>> rows = tok->Tokenize({text}, context, false);
    bool tokenize_ok = false;
    if (c.at("tokenize_77").is_null()) {
      ASSERT_FALSE(rows.ok());
      EXPECT_EQ(rows.status().code(), StatusCode::kInvalidArgument);
      EXPECT_EQ(rows.status().message(), c.at("tokenize_error").get<std::string>());
      tokenize_ok = rows.status().message() == c.at("tokenize_error").get<std::string>();
    } else {
      ASSERT_TRUE(rows.ok()) << rows.status().ToString();
      ASSERT_EQ(rows->size(), 1u);
      tokenize_ok = rows->at(0) == c.at("tokenize_77").get<std::vector<int32_t>>();
      EXPECT_TRUE(tokenize_ok);
    }

    StatusOr<std::vector<std::vector<int32_t>>> truncated = tok->Tokenize({text}, context, true);
    ASSERT_TRUE(truncated.ok()) << truncated.status().ToString();
    const bool truncate_ok =
        truncated->at(0) == c.at("tokenize_77_truncate").get<std::vector<int32_t>>();
    EXPECT_TRUE(truncate_ok);

    EXPECT_EQ(tok->Decode(*ids), c.at("decode").get<std::string>());
    if (ids_ok && tokenize_ok && truncate_ok) ++exact;
  }
  std::cout << "clip tokenizer: " << exact << " of 45 fixture cases exact\n";
  EXPECT_EQ(exact, 45);
}

TEST_F(ClipTokenizerTest, BatchRowsFollowInputOrder) {
  StatusOr<ClipTokenizer> tok = ClipTokenizer::Load(vocab_);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const nlohmann::json& cases = fixture_.at("cases");
  std::vector<std::string> texts = {cases[0].at("text").get<std::string>(),
                                    cases[1].at("text").get<std::string>()};
  StatusOr<std::vector<std::vector<int32_t>>> rows = tok->Tokenize(texts);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ(rows->at(0), cases[0].at("tokenize_77").get<std::vector<int32_t>>());
  EXPECT_EQ(rows->at(1), cases[1].at("tokenize_77").get<std::vector<int32_t>>());
}

TEST_F(ClipTokenizerTest, TooLongTextIsInvalidArgumentNamingIt) {
  StatusOr<ClipTokenizer> tok = ClipTokenizer::Load(vocab_);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  std::string text;
  for (int i = 0; i < 76; ++i) text += "a ";
  StatusOr<std::vector<std::vector<int32_t>>> rows = tok->Tokenize({"fine", text});
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(rows.status().message().find(text), std::string::npos);
  EXPECT_NE(rows.status().message().find("too long for context length 77"), std::string::npos);

  StatusOr<std::vector<std::vector<int32_t>>> cut = tok->Tokenize({text}, 77, true);
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  EXPECT_EQ(cut->at(0).size(), 77u);
  EXPECT_EQ(cut->at(0).front(), ClipTokenizer::kStartOfText);
  EXPECT_EQ(cut->at(0).back(), ClipTokenizer::kEndOfText);
}

TEST_F(ClipTokenizerTest, MissingVocabularyIsNotFound) {
  StatusOr<ClipTokenizer> tok = ClipTokenizer::Load(tmp_ / "absent.txt.gz");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kNotFound);
  EXPECT_NE(tok.status().message().find("absent.txt.gz"), std::string::npos);
}

TEST_F(ClipTokenizerTest, CorruptVocabularyIsDataLoss) {
  // A gzip stream cut in half.
  std::ifstream in(vocab_, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const fs::path truncated = tmp_ / "truncated.txt.gz";
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  StatusOr<ClipTokenizer> tok = ClipTokenizer::Load(truncated);
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(tok.status().message().find("truncated.txt.gz"), std::string::npos);

  // Not gzip at all.
  const fs::path plain = tmp_ / "plain.txt.gz";
  std::ofstream(plain, std::ios::binary) << "#version: 0.2\nh e\n";
  tok = ClipTokenizer::Load(plain);
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(tok.status().message().find("plain.txt.gz"), std::string::npos);
}

}  // namespace
}  // namespace clisc::text
