#pragma once
// Byte-level text helpers shared by the handlers: UTF-8 validation, hex, percent-decoding and
// form decoding. Pure functions, no allocation surprises, fully unit-tested.

#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace hashd {

// True when `text` is well-formed UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF).
bool IsValidUtf8(std::string_view text);

// Appends `text` to `out` as a JSON string literal (quotes included): `"`, `\` and control
// characters escaped, well-formed UTF-8 copied as is, and each byte that is not part of
// well-formed UTF-8 written as \ufffd, so that the result is always valid JSON in UTF-8.
void AppendJsonString(std::string& out, std::string_view text);

// The value of a hex digit (either case), or -1 when `ch` is not one.
int HexValue(char ch);

std::string HexEncode(std::string_view bytes);
// Accepts upper or lower case; nullopt on odd length or a non-hex character.
std::optional<std::string> HexDecode(std::string_view hex);

// Decodes %XX escapes; '+' is kept (path semantics). nullopt on a malformed escape.
std::optional<std::string> PercentDecode(std::string_view text);

// Value of `key` in an application/x-www-form-urlencoded body ('+' means space): nullopt
// when absent, kInvalid "invalid_encoding" when its value's percent-encoding is malformed (a
// pair whose name cannot be decoded is not `key`). Decoding buffers that are dropped are
// wiped, as the value may be a password; the caller wipes the value it gets.
Result<std::optional<std::string>> FormField(std::string_view body, std::string_view key);

// The media type of a Content-Type header, lower-cased, without parameters.
std::string MediaType(std::string_view content_type);

}  // namespace hashd
