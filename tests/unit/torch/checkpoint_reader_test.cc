// ReadCheckpoint and LoadStateDict on checkpoints written here byte by byte (zip archives through
// LibTorch's own writer, legacy files by hand) and on corrupt files. The golden fixtures are in
// checkpoint_fixture_test.cc.
#include "workers/models/checkpoint_reader.h"

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/serialize.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "workers/models/pickle_reader.h"

namespace clisc {
namespace {

namespace fs = std::filesystem;

// Emits the protocol-2 opcodes torch.save uses.
class PickleWriter {
 public:
  PickleWriter& Proto() { return Op("\x80\x02"); }
  PickleWriter& Mark() { return Op("("); }
  PickleWriter& Stop() { return Op("."); }
  PickleWriter& EmptyDict() { return Op("}"); }
  PickleWriter& EmptyTuple() { return Op(")"); }
  PickleWriter& Tuple() { return Op("t"); }
  PickleWriter& SetItems() { return Op("u"); }
  PickleWriter& SetItem() { return Op("s"); }
  PickleWriter& Reduce() { return Op("R"); }
  PickleWriter& Build() { return Op("b"); }
  PickleWriter& PersId() { return Op("Q"); }
  PickleWriter& False() { return Op("\x89"); }
  PickleWriter& Put(uint8_t i) { return Op("q").Byte(i); }
  PickleWriter& Get(uint8_t i) { return Op("h").Byte(i); }
  PickleWriter& Global(const std::string& module, const std::string& name) {
    return Op("c" + module + "\n" + name + "\n");
  }
  PickleWriter& Str(const std::string& s) {
    Op("X");
    for (int i = 0; i < 4; ++i) Byte((s.size() >> (8 * i)) & 0xff);
    return Op(s);
  }
  PickleWriter& Int(int32_t v) {
    Op("J");
    for (int i = 0; i < 4; ++i) Byte((static_cast<uint32_t>(v) >> (8 * i)) & 0xff);
    return *this;
  }
  PickleWriter& Ints(const std::vector<int64_t>& v) {
    Mark();
    for (int64_t x : v) Int(static_cast<int32_t>(x));
    return Tuple();
  }
  PickleWriter& Byte(uint8_t b) {
    bytes_.push_back(static_cast<char>(b));
    return *this;
  }
  PickleWriter& Op(const char* s, size_t n) { return Op(std::string(s, n)); }
  PickleWriter& Op(const std::string& s) {
    bytes_ += s;
    return *this;
  }
  // The persistent id torch.save writes for a storage; legacy files add a view slot.
  PickleWriter& Storage(const std::string& type, const std::string& key, int64_t numel,
                        bool legacy = false) {
    Mark().Str("storage").Global("torch", type).Str(key).Str("cpu").Int(numel);
    if (legacy) Op("N");
    return Tuple().PersId();
  }
  PickleWriter& Tensor(const std::string& type, const std::string& key, int64_t numel,
                       int64_t offset, const std::vector<int64_t>& size,
                       const std::vector<int64_t>& stride, bool legacy = false) {
    Global("torch._utils", "_rebuild_tensor_v2").Mark();
    Storage(type, key, numel, legacy).Int(offset).Ints(size).Ints(stride).False();
    Global("collections", "OrderedDict").EmptyTuple().Reduce();
    return Tuple().Reduce();
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

template <typename T>
std::string Raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

void WriteZip(const fs::path& path, const std::string& pkl,
              const std::map<std::string, std::string>& storages) {
  caffe2::serialize::PyTorchStreamWriter writer(path.string());
  writer.writeRecord("data.pkl", pkl.data(), pkl.size());
  for (const auto& [key, data] : storages) {
    writer.writeRecord("data/" + key, data.data(), data.size());
  }
  writer.writeEndOfFile();
}

void WriteBytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class CheckpointReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("checkpoint_reader_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

std::vector<float> kFloats = {0, 1, 2, 3, 4, 5};

// An OrderedDict state_dict with one tensor of each kind the reader must rebuild.
fs::path WriteKitchenSink(const fs::path& dir) {
  PickleWriter p;
  p.Proto().Global("collections", "OrderedDict").Put(0).EmptyTuple().Reduce().Put(1).Mark();
  p.Str("w").Tensor("FloatStorage", "0", 6, 0, {2, 3}, {3, 1});
  p.Str("h").Tensor("HalfStorage", "1", 4, 0, {4}, {1});
  p.Str("b").Tensor("BFloat16Storage", "2", 2, 0, {2}, {1});
  p.Str("i").Tensor("LongStorage", "3", 1, 0, {}, {});
  p.Str("view").Tensor("FloatStorage", "0", 6, 1, {2}, {3});  // column 1 of w
  p.Str("param").Global("torch._utils", "_rebuild_parameter").Mark();
  p.Tensor("FloatStorage", "0", 6, 0, {6}, {1})
      .Op("\x88")
      .Get(0)
      .EmptyTuple()
      .Reduce()
      .Tuple()
      .Reduce();
  p.Str("empty").Tensor("FloatStorage", "4", 0, 0, {1, 0, 32}, {0, 32, 1});
  p.SetItems();
  // OrderedDict's state: {'_metadata': OrderedDict()}, applied by BUILD.
  p.EmptyDict().Str("_metadata").Get(0).EmptyTuple().Reduce().SetItem().Build().Stop();
  const torch::Tensor h = torch::tensor({0.5, -1.0, 2.0, 65504.0}).to(torch::kHalf);
  const torch::Tensor b = torch::tensor({1.5, -3.0}).to(torch::kBFloat16);
  const std::vector<int64_t> i = {42};
  std::map<std::string, std::string> storages = {
      {"0", Raw(kFloats)},
      {"1", std::string(static_cast<const char*>(h.data_ptr()), 8)},
      {"2", std::string(static_cast<const char*>(b.data_ptr()), 4)},
      {"3", Raw(i)},
      {"4", ""}};
  const fs::path path = dir / "kitchen_sink.pth";
  WriteZip(path, p.bytes(), storages);
  return path;
}

TEST_F(CheckpointReaderTest, ZipOrderedDictWithEveryTensorKind) {
  auto dict = ReadCheckpoint(WriteKitchenSink(dir_));
  ASSERT_TRUE(dict.ok()) << dict.status().ToString();
  std::vector<std::string> names;
  for (const auto& [name, t] : *dict) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"w", "h", "b", "i", "view", "param", "empty"}));
  std::map<std::string, torch::Tensor> t(dict->begin(), dict->end());
  EXPECT_EQ(t["w"].scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(t["w"], torch::arange(6, torch::kFloat).reshape({2, 3})));
  EXPECT_EQ(t["h"].scalar_type(), torch::kHalf);
  EXPECT_TRUE(torch::equal(t["h"].to(torch::kFloat), torch::tensor({0.5f, -1.0f, 2.0f, 65504.0f})));
  EXPECT_EQ(t["b"].scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(t["b"].to(torch::kFloat), torch::tensor({1.5f, -3.0f})));
  EXPECT_EQ(t["i"].scalar_type(), torch::kLong);
  EXPECT_EQ(t["i"].dim(), 0);
  EXPECT_EQ(t["i"].item<int64_t>(), 42);
  EXPECT_TRUE(torch::equal(t["view"], torch::tensor({1.0f, 4.0f})));
  EXPECT_EQ(t["view"].stride(0), 3);
  EXPECT_EQ(t["param"].numel(), 6);
  EXPECT_EQ(t["empty"].sizes(), (std::vector<int64_t>{1, 0, 32}));
  // One storage, as after torch.load: writing w shows through the view and the parameter.
  t["w"].index_put_({0, 1}, 100.0f);
  EXPECT_EQ(t["view"][0].item<float>(), 100.0f);
  EXPECT_EQ(t["param"][1].item<float>(), 100.0f);
}

// torch::pickle_save, LibTorch's own writer, tags a typed dict with restore_type_tag.
TEST_F(CheckpointReaderTest, LibTorchPickleSaveOfATypedDict) {
  c10::Dict<std::string, torch::Tensor> dict;
  dict.insert("a", torch::arange(4, torch::kFloat));
  dict.insert("b", torch::ones({2, 2}, torch::kLong));
  const std::vector<char> bytes = torch::pickle_save(dict);
  const fs::path path = dir_ / "pickle_save.pt";
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  auto read = ReadCheckpoint(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].first, "a");
  EXPECT_TRUE(torch::equal((*read)[0].second, torch::arange(4, torch::kFloat)));
  EXPECT_TRUE(torch::equal((*read)[1].second, torch::ones({2, 2}, torch::kLong)));
}

TEST_F(CheckpointReaderTest, NestedDictsSelectedByPrefix) {
  PickleWriter p;
  p.Proto().EmptyDict().Mark().Str("epoch").Int(3).Str("model").EmptyDict().Mark();
  p.Str("conv.weight").Tensor("FloatStorage", "0", 6, 0, {6}, {1});
  p.Str("bn").EmptyDict().Str("bias").Tensor("FloatStorage", "0", 6, 2, {2}, {1}).SetItem();
  p.SetItems().SetItems().Stop();
  const fs::path path = dir_ / "training.pth";
  WriteZip(path, p.bytes(), {{"0", Raw(kFloats)}});

  auto all = ReadCheckpoint(path);
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(all.status().message().find("'epoch' is a int, not a tensor"), std::string::npos)
      << all.status().message();
  EXPECT_NE(all.status().message().find(path.string()), std::string::npos);

  auto model = ReadCheckpoint(path, {.prefix = "model."});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ASSERT_EQ(model->size(), 2u);
  EXPECT_EQ((*model)[0].first, "conv.weight");
  EXPECT_EQ((*model)[1].first, "bn.bias");
  EXPECT_TRUE(torch::equal((*model)[1].second, torch::tensor({2.0f, 3.0f})));

  auto none = ReadCheckpoint(path, {.prefix = "state_dict."});
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("no tensors under prefix 'state_dict.'"),
            std::string::npos);
}

// The legacy layout: magic, protocol, sys_info, object, key list, then the storages.
std::string LegacyFile() {
  PickleWriter magic, protocol, sys_info, object, keys;
  magic.Proto()
      .Op("\x8a\x0a")
      .Op(std::string("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10))
      .Stop();
  protocol.Proto().Op("M").Byte(0xe9).Byte(0x03).Stop();
  sys_info.Proto().EmptyDict().Mark().Str("little_endian").Op("\x88").SetItems().Stop();
  object.Proto().Global("collections", "OrderedDict").EmptyTuple().Reduce().Mark();
  object.Str("conv1.weight").Tensor("FloatStorage", "140", 6, 0, {3, 2}, {2, 1}, true);
  object.Str("fc.bias").Tensor("LongStorage", "141", 2, 0, {2}, {1}, true);
  object.SetItems().Stop();
  keys.Proto().Op("]").Put(0).Mark().Str("140").Str("141").Op("e").Stop();
  std::string file =
      magic.bytes() + protocol.bytes() + sys_info.bytes() + object.bytes() + keys.bytes();
  file += Raw(std::vector<int64_t>{6}) + Raw(kFloats);
  file += Raw(std::vector<int64_t>{2}) + Raw(std::vector<int64_t>{-7, 9});
  return file;
}

TEST_F(CheckpointReaderTest, LegacyFormat) {
  const fs::path path = dir_ / "legacy.pth";
  WriteBytes(path, LegacyFile());
  auto dict = ReadCheckpoint(path);
  ASSERT_TRUE(dict.ok()) << dict.status().ToString();
  ASSERT_EQ(dict->size(), 2u);
  EXPECT_EQ((*dict)[0].first, "conv1.weight");
  EXPECT_TRUE(torch::equal((*dict)[0].second, torch::arange(6, torch::kFloat).reshape({3, 2})));
  EXPECT_EQ((*dict)[1].first, "fc.bias");
  EXPECT_TRUE(torch::equal((*dict)[1].second, torch::tensor({-7, 9}, torch::kLong)));
}

TEST_F(CheckpointReaderTest, TruncatedLegacyFileIsDataLoss) {
  const fs::path path = dir_ / "legacy_cut.pth";
  const std::string file = LegacyFile();
  WriteBytes(path, file.substr(0, file.size() - 5));
  auto dict = ReadCheckpoint(path);
  EXPECT_EQ(dict.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(dict.status().message().find("file ends inside storage 141 (truncated file?)"),
            std::string::npos)
      << dict.status().message();
  EXPECT_NE(dict.status().message().find(path.string()), std::string::npos);

  WriteBytes(path, file.substr(0, 60));  // inside the object pickle
  dict = ReadCheckpoint(path);
  EXPECT_EQ(dict.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(dict.status().message().find("truncated file?"), std::string::npos)
      << dict.status().message();
}

TEST_F(CheckpointReaderTest, TruncatedZipIsDataLoss) {
  const fs::path good = WriteKitchenSink(dir_);
  const std::string bytes = ReadBytes(good);
  const fs::path path = dir_ / "cut.pth";
  WriteBytes(path, bytes.substr(0, bytes.size() / 2));
  auto dict = ReadCheckpoint(path);
  ASSERT_FALSE(dict.ok());
  EXPECT_EQ(dict.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(dict.status().message().find("checkpoint " + path.string() + ": corrupt or unreadable"),
            std::string::npos)
      << dict.status().message();
}

TEST_F(CheckpointReaderTest, FlippedZipDirectoryIsDataLoss) {
  std::string bytes = ReadBytes(WriteKitchenSink(dir_));
  const size_t directory = bytes.rfind("PK\x01\x02");
  ASSERT_NE(directory, std::string::npos);
  for (size_t i = directory; i < directory + 8; ++i) bytes[i] = static_cast<char>(~bytes[i]);
  const fs::path path = dir_ / "flipped.pth";
  WriteBytes(path, bytes);
  auto dict = ReadCheckpoint(path);
  ASSERT_FALSE(dict.ok());
  EXPECT_EQ(dict.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(dict.status().message().find(path.string()), std::string::npos);
  EXPECT_NE(dict.status().message().find("corrupt or unreadable zip archive"), std::string::npos)
      << dict.status().message();
}

TEST_F(CheckpointReaderTest, FlippedTensorBytesAreDataLoss) {
  std::string bytes = ReadBytes(WriteKitchenSink(dir_));
  // Storage 0 holds the floats 0..5; 4.0f is 00 00 80 40 and occurs nowhere else.
  const std::string four("\x00\x00\x80\x40", 4);
  const size_t at = bytes.find(four);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 3] = static_cast<char>(bytes[at + 3] ^ 0x01);
  const fs::path path = dir_ / "flipped_data.pth";
  WriteBytes(path, bytes);
  auto dict = ReadCheckpoint(path);
  ASSERT_FALSE(dict.ok());
  EXPECT_EQ(dict.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(dict.status().message().find("CRC-32 mismatch in record data/0"), std::string::npos)
      << dict.status().message();
}

TEST_F(CheckpointReaderTest, UnknownOpcodeIsUnimplemented) {
  PickleWriter p;
  p.Proto().EmptyDict().Op("I42\n").Stop();  // INT, a protocol-0 opcode torch.save never writes
  const fs::path path = dir_ / "opcode.pth";
  WriteZip(path, p.bytes(), {});
  auto dict = ReadCheckpoint(path);
  EXPECT_EQ(dict.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(dict.status().message().find("unsupported pickle opcode 0x49 at offset 3"),
            std::string::npos)
      << dict.status().message();
  EXPECT_NE(dict.status().message().find(path.string()), std::string::npos);
}

TEST_F(CheckpointReaderTest, BadStorageAndViewsAreRefused) {
  PickleWriter p;
  p.Proto().EmptyDict().Str("w").Tensor("FloatStorage", "0", 6, 4, {2, 2}, {2, 1}).SetItem().Stop();
  const fs::path path = dir_ / "outside.pth";
  WriteZip(path, p.bytes(), {{"0", Raw(kFloats)}});
  auto dict = ReadCheckpoint(path);
  EXPECT_EQ(dict.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(dict.status().message().find("reaches past its storage of 6 elements"),
            std::string::npos)
      << dict.status().message();

  WriteZip(path, p.bytes(), {{"0", Raw(std::vector<float>{1, 2})}});
  dict = ReadCheckpoint(path);
  EXPECT_EQ(dict.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(dict.status().message().find("storage record data/0 has 8 bytes, expected 6 x 4"),
            std::string::npos)
      << dict.status().message();

  WriteZip(path, p.bytes(), {});
  dict = ReadCheckpoint(path);
  EXPECT_EQ(dict.status().code(), StatusCode::kNotFound);
  EXPECT_NE(dict.status().message().find("missing storage record data/0"), std::string::npos);

  PickleWriter q;
  q.Proto().EmptyDict().Str("q").Global("torch._utils", "_rebuild_qtensor").EmptyTuple().Reduce();
  q.SetItem().Stop();
  WriteZip(path, q.bytes(), {});
  dict = ReadCheckpoint(path);
  EXPECT_EQ(dict.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(dict.status().message().find("torch._utils._rebuild_qtensor"), std::string::npos);
}

TEST_F(CheckpointReaderTest, NotACheckpoint) {
  auto missing = ReadCheckpoint(dir_ / "absent.pth");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("absent.pth"), std::string::npos);

  const fs::path text = dir_ / "notes.txt";
  WriteBytes(text, "hello\n");
  auto dict = ReadCheckpoint(text);
  EXPECT_EQ(dict.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(dict.status().message().find("not a PyTorch checkpoint"), std::string::npos);
}

TEST_F(CheckpointReaderTest, ZipWithoutDataPklIsNotFound) {
  const fs::path path = dir_ / "no_pickle.pth";
  caffe2::serialize::PyTorchStreamWriter writer(path.string());
  writer.writeRecord("other.txt", "x", 1);
  writer.writeEndOfFile();
  auto dict = ReadCheckpoint(path);
  EXPECT_EQ(dict.status().code(), StatusCode::kNotFound);
  EXPECT_NE(dict.status().message().find("zip archive has no data.pkl record"), std::string::npos)
      << dict.status().message();
}

TEST_F(CheckpointReaderTest, LegacyStorageLargerThanFileIsDataLoss) {
  std::string file = LegacyFile();
  // The pickled element count of storage 141 (BININT 2) becomes 2^30.
  const std::string count = PickleWriter().Str("141").Str("cpu").Int(2).bytes();
  const size_t at = file.find(count);
  ASSERT_NE(at, std::string::npos);
  file[at + count.size() - 1] = 0x40;
  const fs::path path = dir_ / "legacy_huge.pth";
  WriteBytes(path, file);
  auto dict = ReadCheckpoint(path);
  EXPECT_EQ(dict.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(dict.status().message().find("storage 141 claims 1073741826 elements"),
            std::string::npos)
      << dict.status().message();
}

// The unpickler on its own, for opcodes the checkpoints above do not use.
pickle::Hooks NoHooks() { return {}; }

TEST(PickleReaderTest, ScalarsAndContainers) {
  PickleWriter p;
  p.Proto().Op("\x95").Op(std::string(8, '\0'));  // FRAME
  p.Op("]").Op("\x94").Mark();                    // EMPTY_LIST, MEMOIZE
  p.Op("\x8a\x02\x00\xff", 4);                    // LONG1 -256
  p.Op("\x8a\x00", 2);                            // LONG1 0
  p.Int(-5).Op("K\xff").Op("M\x34\x12");          // BININT, BININT1, BININT2
  p.Op("G\x3f\xf8\x00\x00\x00\x00\x00\x00", 9);   // BINFLOAT 1.5
  p.Op("\x8c\x02hi").Op("C\x01z").Op("N");        // SHORT_BINUNICODE, bytes, None
  p.Op("K\x01\x85").Op("K\x01K\x02\x86").Op("K\x01K\x02K\x03\x87");  // TUPLE1..3
  p.Op("e").Op("\x88").Op("a").Stop();                               // APPENDS, NEWTRUE, APPEND
  auto out = pickle::Unpickle(p.bytes(), 0, NoHooks(), "test");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->end, p.bytes().size());
  const auto& items = out->value->items;
  ASSERT_EQ(items.size(), 13u);
  EXPECT_EQ(items[0]->integer, -256);
  EXPECT_EQ(items[1]->integer, 0);
  EXPECT_EQ(items[2]->integer, -5);
  EXPECT_EQ(items[3]->integer, 255);
  EXPECT_EQ(items[4]->integer, 0x1234);
  EXPECT_EQ(items[5]->real, 1.5);
  EXPECT_EQ(items[6]->text, "hi");
  EXPECT_EQ(items[7]->kind, pickle::Value::Kind::kBytes);
  EXPECT_EQ(items[8]->kind, pickle::Value::Kind::kNone);
  EXPECT_EQ(items[9]->items.size(), 1u);
  EXPECT_EQ(items[10]->items.size(), 2u);
  EXPECT_EQ(items[11]->items[2]->integer, 3);
  EXPECT_EQ(items[12]->boolean, true);
}

TEST(PickleReaderTest, MalformedStreams) {
  auto truncated =
      pickle::Unpickle(std::string("\x80\x02X\x10\x00\x00\x00ab", 9), 0, NoHooks(), "t");
  EXPECT_EQ(truncated.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(truncated.status().message().find("t: pickle offset 2: pickle ends inside"),
            std::string::npos)
      << truncated.status().message();

  auto no_stop = pickle::Unpickle(std::string("\x80\x02}", 3), 0, NoHooks(), "t");
  EXPECT_EQ(no_stop.status().code(), StatusCode::kDataLoss);

  auto bad_memo = pickle::Unpickle(std::string("\x80\x02h\x07.", 5), 0, NoHooks(), "t");
  EXPECT_EQ(bad_memo.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_memo.status().message().find("memo index 7 was never stored"), std::string::npos);

  auto underflow = pickle::Unpickle(std::string("\x80\x02s.", 4), 0, NoHooks(), "t");
  EXPECT_EQ(underflow.status().code(), StatusCode::kInvalidArgument);
}

StateDict LinearDict(torch::Tensor weight, torch::Tensor bias) {
  return {{"weight", std::move(weight)}, {"bias", std::move(bias)}};
}

TEST(LoadStateDictTest, CopiesAndConvertsDtypes) {
  torch::nn::Linear linear(3, 2);
  const torch::Tensor w = torch::arange(6, torch::kFloat).reshape({2, 3});
  ASSERT_TRUE(LoadStateDict(*linear, LinearDict(w.to(torch::kHalf), torch::ones({2}))).ok());
  EXPECT_TRUE(torch::equal(linear->weight, w));
  EXPECT_TRUE(torch::equal(linear->bias, torch::ones({2})));
  EXPECT_EQ(linear->weight.scalar_type(), torch::kFloat);
}

TEST(LoadStateDictTest, StrictErrorsNameTheKeys) {
  torch::nn::Linear linear(3, 2);
  const torch::Tensor before = linear->weight.clone();

  Status missing = LoadStateDict(*linear, {{"weight", torch::zeros({2, 3})}});
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("1 missing key(s): 'bias'"), std::string::npos)
      << missing.message();
  EXPECT_TRUE(torch::equal(linear->weight, before));  // nothing copied on error

  StateDict extra = LinearDict(torch::zeros({2, 3}), torch::zeros({2}));
  extra.emplace_back("head.scale", torch::zeros({1}));
  Status unexpected = LoadStateDict(*linear, extra);
  EXPECT_EQ(unexpected.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unexpected.message().find("1 unexpected key(s): 'head.scale'"), std::string::npos)
      << unexpected.message();

  Status shape = LoadStateDict(*linear, LinearDict(torch::zeros({3, 2}), torch::zeros({2})));
  EXPECT_EQ(shape.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(shape.message().find("shape mismatch for 'weight': checkpoint [3, 2], module [2, 3]"),
            std::string::npos)
      << shape.message();
  EXPECT_TRUE(torch::equal(linear->weight, before));

  // Not strict: missing and unexpected keys are tolerated, a shape mismatch never is.
  EXPECT_TRUE(LoadStateDict(*linear, {{"weight", torch::zeros({2, 3})}, {"x", torch::zeros({1})}},
                            /*strict=*/false)
                  .ok());
  EXPECT_TRUE(torch::equal(linear->weight, torch::zeros({2, 3})));
  EXPECT_FALSE(LoadStateDict(*linear, {{"bias", torch::zeros({5})}}, /*strict=*/false).ok());
}

}  // namespace
}  // namespace clisc
