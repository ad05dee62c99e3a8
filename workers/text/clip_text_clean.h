// The text stages of OpenAI CLIP's simple_tokenizer.py before BPE: basic_clean (ftfy.fix_text,
// html.unescape twice, strip), whitespace_clean + lower(), and the pre-tokenizing regex split.
// Strings are UTF-8 in and out; invalid UTF-8 bytes become U+FFFD.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace clisc::text {

// The subset of ftfy 6.3 fix_text that matters for prompts: HTML entities (only when the text has
// no '<'), terminal escapes, whole-text UTF-8-read-as-windows-1252 mojibake, C1 controls, Latin
// ligatures, full-width characters, curly quotes, line breaks, control characters, then NFC,
// repeated until the text stops changing.
std::string FtfyFixText(std::string_view text);

// Python's html.unescape: numeric references with HTML5's replacement rules, and the named
// entities listed in clip_text_clean.cc (a subset of HTML5's 2231).
std::string HtmlUnescape(std::string_view text);

// ftfy, html.unescape twice, then strip() of Unicode whitespace.
std::string BasicClean(std::string_view text);

// re.sub(r'\s+', ' ', text).strip().lower() with Python's Unicode whitespace and full lower-casing.
std::string WhitespaceCleanLower(std::string_view text);

// bytes.decode('utf-8', errors='replace').
std::string ReplaceInvalidUtf8(std::string_view bytes);

// regex.findall of CLIP's pattern on already cleaned, lower-cased text.
std::vector<std::string> PreTokenize(std::string_view text);

}  // namespace clisc::text
