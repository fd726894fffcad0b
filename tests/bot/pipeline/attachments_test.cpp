// Files a capability result carries: taken out of the result for the reply (text or base64),
// named safely, limited per reply, and described to the model in their place.
#include "parley/bot/pipeline/attachments.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "parley/base/base64.h"

namespace parley::bot::pipeline {
namespace attachments_test {

using nlohmann::json;
using ::testing::HasSubstr;

TEST(Attachments, TextAndBase64FilesAreTakenAndDescribedInTheirPlace) {
  const std::string png("\x89PNG\r\n\x1a\n\0\0", 10);
  json result = {
      {"text", "done"},
      {"attachments",
       {{{"filename", "events.ics"}, {"media_type", "text/calendar"}, {"text", "BEGIN"}},
        {{"filename", "mood.png"}, {"media_type", "Image/PNG"}, {"base64", base64_encode(png)}}}}};
  TakenFiles taken;
  take_attachments(result, taken);
  ASSERT_EQ(taken.files.size(), 2u);
  EXPECT_TRUE(taken.problems.empty());
  EXPECT_EQ(taken.files[0].filename, "events.ics");
  EXPECT_EQ(taken.files[0].content, "BEGIN");
  EXPECT_EQ(taken.files[1].media_type, "image/png");
  EXPECT_EQ(taken.files[1].content, png);
  EXPECT_EQ(result["text"], "done");
  EXPECT_EQ(result["attachments"][1], json({{"filename", "mood.png"},
                                            {"media_type", "image/png"},
                                            {"bytes", 10},
                                            {"delivery", "sent to the user with the reply"}}));
  EXPECT_THAT(result.dump(), ::testing::Not(HasSubstr(base64_encode(png))));
  EXPECT_EQ(file_problems_note(taken), "");
}

TEST(Attachments, BadFilesAreNotSentAndSaySo) {
  json result = {
      {"attachments",
       {{{"filename", "a.png"}, {"base64", "not base64!"}},
        {{"filename", "b.txt"}},
        "not an object",
        {{"filename", "c.txt"}, {"media_type", "text/plain; <script>"}, {"text", "c"}}}}};
  TakenFiles taken;
  take_attachments(result, taken);
  ASSERT_EQ(taken.files.size(), 1u);
  EXPECT_EQ(taken.files[0].media_type, "application/octet-stream") << "not a media type";
  ASSERT_EQ(taken.problems.size(), 2u);
  EXPECT_EQ(taken.problems[0], "a.png: its content is not valid base64");
  EXPECT_EQ(taken.problems[1], "b.txt: it has no content");
  EXPECT_EQ(result["attachments"][0]["not_sent"], "its content is not valid base64");
  EXPECT_EQ(file_problems_note(taken),
            "\n(Not sent: a.png: its content is not valid base64; b.txt: it has no content.)");
}

TEST(Attachments, AReplyCarriesAtMostTenFilesAndEightMebibytes) {
  TakenFiles taken;
  json many = {{"attachments", json::array()}};
  for (int i = 0; i < 12; ++i) {
    many["attachments"].push_back({{"filename", fmt::format("f{}.txt", i)}, {"text", "x"}});
  }
  take_attachments(many, taken);
  EXPECT_EQ(taken.files.size(), kMaxReplyFiles);
  ASSERT_EQ(taken.problems.size(), 2u);
  EXPECT_THAT(taken.problems[0], HasSubstr("f10.txt: a reply carries at most 10 files"));

  TakenFiles big;
  json first = {{"attachments", {{{"filename", "a"}, {"text", std::string(5u << 20, 'a')}}}}};
  json second = {{"attachments", {{{"filename", "b"}, {"text", std::string(4u << 20, 'b')}}}}};
  take_attachments(first, big);
  take_attachments(second, big);  // a later tool's result in the same turn
  ASSERT_EQ(big.files.size(), 1u);
  EXPECT_THAT(big.problems.at(0), HasSubstr("b: a reply's files may hold 8 MiB at most"));
}

TEST(Attachments, FileNamesArePlainNames) {
  EXPECT_EQ(safe_filename("events.ics"), "events.ics");
  EXPECT_EQ(safe_filename("../../etc/passwd"), "passwd");
  EXPECT_EQ(safe_filename("C:\\Users\\x\\report.pdf"), "report.pdf");
  EXPECT_EQ(safe_filename(".hidden"), "hidden");
  EXPECT_EQ(safe_filename("a\"b\r\nc.txt"), "abc.txt");
  EXPECT_EQ(safe_filename(""), "file");
  EXPECT_EQ(safe_filename("/"), "file");
  EXPECT_EQ(safe_filename("caf\xc3\xa9.txt"), "caf\xc3\xa9.txt");
  EXPECT_EQ(safe_filename("bad\xff.txt"), "bad\xef\xbf\xbd.txt");
  const std::string long_name = safe_filename(std::string(60, 'a') + std::string(30, '\xe2'));
  EXPECT_LE(long_name.size(), 100u);
  std::string many_euros;
  for (int i = 0; i < 50; ++i) many_euros += "\xe2\x82\xac";  // 150 bytes of €
  const std::string cut = safe_filename(many_euros);
  EXPECT_LE(cut.size(), 100u);
  EXPECT_EQ(cut.size() % 3, 0u) << "cut between characters, never inside one";
}

TEST(Attachments, AResultWithoutFilesIsLeftAlone) {
  json result = {{"text", "hi"}};
  TakenFiles taken;
  take_attachments(result, taken);
  EXPECT_EQ(result, json({{"text", "hi"}}));
  json not_object = json::array({1, 2});
  take_attachments(not_object, taken);
  EXPECT_TRUE(taken.files.empty());
}

}  // namespace attachments_test
}  // namespace parley::bot::pipeline
