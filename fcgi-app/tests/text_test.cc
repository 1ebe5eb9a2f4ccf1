#include "core/text.h"

#include <gtest/gtest.h>

namespace hashd {
namespace {

TEST(Utf8, AcceptsWellFormedText) {
    EXPECT_TRUE(IsValidUtf8(""));
    EXPECT_TRUE(IsValidUtf8("hunter2"));
    EXPECT_TRUE(IsValidUtf8("p\xC3\xA4ssw\xC3\xB6rd"));  // pässwörd
    EXPECT_TRUE(IsValidUtf8("\xE2\x82\xAC"));            // €
    EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x94\x91"));        // U+1F511
}

TEST(Utf8, RejectsMalformedText) {
    EXPECT_FALSE(IsValidUtf8("\xC3"));              // truncated
    EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
    EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));      // overlong 3-byte
    EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate U+D800
    EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // beyond U+10FFFF
    EXPECT_FALSE(IsValidUtf8("\xFF"));
    EXPECT_FALSE(IsValidUtf8("a\x80z"));  // stray continuation
}

TEST(JsonString, EscapesWhatJsonRequiresAndKeepsUtf8) {
    const auto quoted = [](std::string_view text) {
        std::string out = "x=";
        AppendJsonString(out, text);
        return out;
    };
    EXPECT_EQ(quoted(""), "x=\"\"");
    EXPECT_EQ(quoted("plain text"), "x=\"plain text\"");
    EXPECT_EQ(quoted("a\"b\\c"), "x=\"a\\\"b\\\\c\"");
    EXPECT_EQ(quoted("l1\nl2\r\t"), "x=\"l1\\nl2\\r\\t\"");
    EXPECT_EQ(quoted(std::string_view("\0\x01\x1f\x7f", 4)), "x=\"\\u0000\\u0001\\u001f\\u007f\"");
    EXPECT_EQ(quoted("p\xC3\xA4ss \xF0\x9F\x94\x91"), "x=\"p\xC3\xA4ss \xF0\x9F\x94\x91\"");
}

TEST(JsonString, ReplacesEachByteOfMalformedUtf8) {
    std::string out;
    AppendJsonString(out, "a\xFF\xC3z\xED\xA0\x80");
    EXPECT_EQ(out, "\"a\\ufffd\\ufffdz\\ufffd\\ufffd\\ufffd\"");
    EXPECT_TRUE(IsValidUtf8(out));
}

TEST(Hex, RoundTripsAndRejectsGarbage) {
    EXPECT_EQ(HexEncode("$2b$"), "24326224");
    EXPECT_EQ(HexDecode("24326224"), "$2b$");
    EXPECT_EQ(HexDecode("2432AB"), std::string("\x24\x32\xAB"));
    EXPECT_FALSE(HexDecode("123"));
    EXPECT_FALSE(HexDecode("zz"));
}

TEST(PercentDecode, DecodesEscapesAndRejectsMalformedOnes) {
    EXPECT_EQ(PercentDecode("a%20b+c"), "a b+c");
    EXPECT_EQ(PercentDecode("%C3%A4"), "\xC3\xA4");
    EXPECT_FALSE(PercentDecode("%2"));
    EXPECT_FALSE(PercentDecode("%zz"));
    EXPECT_FALSE(PercentDecode("abc%"));
}

TEST(FormField, FindsDecodedFields) {
    EXPECT_EQ(FormField("password=a+b%21&cost=5", "password").value(), "a b!");
    EXPECT_EQ(FormField("password=a+b%21&cost=5", "cost").value(), "5");
    EXPECT_EQ(FormField("other=1", "password").value(), std::nullopt);
    // A malformed value is not an absent one: the client is told what is wrong with it.
    ASSERT_FALSE(FormField("password=%zz", "password").ok());
    EXPECT_EQ(FormField("password=%zz", "password").error().code, "invalid_encoding");
    EXPECT_EQ(FormField("password=%4", "password").error().code, "invalid_encoding");
    EXPECT_EQ(FormField("%zz=1&password=x", "password").value(), "x");
}

TEST(MediaType, StripsParametersAndCase) {
    EXPECT_EQ(MediaType("Application/JSON; charset=utf-8"), "application/json");
    EXPECT_EQ(MediaType(""), "");
}

}  // namespace
}  // namespace hashd
