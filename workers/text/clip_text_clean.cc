#include "workers/text/clip_text_clean.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

namespace clisc::text {
namespace {

using U32 = std::u32string;

// Decodes UTF-8; a malformed sequence becomes U+FFFD, or ends the decode with nullopt when
// `strict`.
std::optional<U32> DecodeUtf8Checked(std::string_view s, bool strict) {
  U32 out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const int32_t n = static_cast<int32_t>(s.size());
  int32_t i = 0;
  while (i < n) {
    UChar32 c;
    U8_NEXT(p, i, n, c);
    if (c < 0 && strict) return std::nullopt;
    out.push_back(c < 0 ? 0xFFFD : static_cast<char32_t>(c));
  }
  return out;
}

U32 DecodeUtf8(std::string_view s) { return *DecodeUtf8Checked(s, /*strict=*/false); }

// Strict decode: nullopt when the bytes are not valid UTF-8.
std::optional<U32> DecodeUtf8Strict(std::string_view s) {
  return DecodeUtf8Checked(s, /*strict=*/true);
}

void AppendUtf8(char32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string EncodeUtf8(const U32& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) AppendUtf8(c, out);
  return out;
}

U32 FromIcu(const icu::UnicodeString& u) {
  std::string utf8;
  u.toUTF8String(utf8);
  return DecodeUtf8(utf8);
}

icu::UnicodeString ToIcu(const U32& s) {
  const std::string utf8 = EncodeUtf8(s);
  return icu::UnicodeString::fromUTF8(
      icu::StringPiece(utf8.data(), static_cast<int32_t>(utf8.size())));
}

U32 Normalize(const U32& s, bool nfkc) {
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* norm =
      nfkc ? icu::Normalizer2::getNFKCInstance(err) : icu::Normalizer2::getNFCInstance(err);
  if (U_FAILURE(err)) return s;
  icu::UnicodeString out = norm->normalize(ToIcu(s), err);
  return U_FAILURE(err) ? s : FromIcu(out);
}

// windows-1252 bytes 0x80-0x9F; the five bytes it leaves undefined keep their C1 code point,
// which is ftfy's "sloppy-windows-1252".
constexpr std::array<char32_t, 32> kCp1252High = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

std::optional<uint8_t> SloppyCp1252Byte(char32_t c) {
  if (c < 0x80 || (c >= 0xA0 && c <= 0xFF)) return static_cast<uint8_t>(c);
  for (size_t i = 0; i < kCp1252High.size(); ++i) {
    if (kCp1252High[i] == c) return static_cast<uint8_t>(0x80 + i);
  }
  return std::nullopt;
}

// UTF-8 that was decoded as windows-1252 ("cafÃ©"). Only the whole-text case is repaired: ftfy
// also repairs mixed segments, guided by its badness heuristics.
U32 FixWholeTextMojibake(const U32& s) {
  std::string bytes;
  bool any_high = false;
  for (char32_t c : s) {
    const std::optional<uint8_t> b = SloppyCp1252Byte(c);
    if (!b) return s;
    any_high |= *b >= 0x80;
    bytes.push_back(static_cast<char>(*b));
  }
  if (!any_high) return s;
  std::optional<U32> fixed = DecodeUtf8Strict(bytes);
  return fixed ? *fixed : s;
}

U32 RemoveTerminalEscapes(const U32& s) {
  // ftfy: \033\[((?:\d|;)*)([a-zA-Z])
  U32 out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == 0x1B && i + 1 < s.size() && s[i + 1] == U'[') {
      size_t j = i + 2;
      while (j < s.size() && ((s[j] >= U'0' && s[j] <= U'9') || s[j] == U';')) ++j;
      if (j < s.size() && ((s[j] >= U'a' && s[j] <= U'z') || (s[j] >= U'A' && s[j] <= U'Z'))) {
        i = j;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

bool IsFtfyControlChar(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
         (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC) ||
         (c >= 0x1D173 && c <= 0x1D17A) || (c >= 0xE0000 && c <= 0xE007F);
}

bool IsLigature(char32_t c) {
  static const U32 kLigatures =
      U"\u0132\u0133\u0149\u01C4\u01C5\u01C6\u01C7\u01C8\u01C9\u01CA"
      U"\u01CB\u01CC\uFB00\uFB01\uFB02\uFB03\uFB04\uFB05\uFB06";
  return kLigatures.find(c) != U32::npos;
}

// Python's str.isspace(), which is what `\s` and strip() use on str.
bool IsPythonSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

bool IsLetter(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_L_MASK) != 0; }
bool IsNumber(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0; }

U32 FixCharacters(const U32& s) {
  U32 out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char32_t c = s[i];
    if (c >= 0x80 && c <= 0x9F) c = kCp1252High[c - 0x80];  // fix_c1_controls
    if (IsLigature(c) || (c >= 0xFF01 && c <= 0xFFEF)) {    // fix_latin_ligatures, width
      const U32 nfkc = Normalize(U32(1, c), /*nfkc=*/true);
      if (IsLigature(c) || nfkc.size() == 1) {
        out += nfkc;
        continue;
      }
    }
    if (c == 0x3000) c = U' ';
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = U'\'';  // uncurl_quotes
    if (c >= 0x201C && c <= 0x201F) c = U'"';
    if (c == U'\r') {  // fix_line_breaks
      if (i + 1 < s.size() && s[i + 1] == U'\n') ++i;
      c = U'\n';
    }
    if (c == 0x2028 || c == 0x2029 || c == 0x85) c = U'\n';
    if (IsFtfyControlChar(c)) continue;
    out.push_back(c);
  }
  return out;
}

U32 StripPythonSpace(const U32& s) {
  size_t b = 0, e = s.size();
  while (b < e && IsPythonSpace(s[b])) ++b;
  while (e > b && IsPythonSpace(s[e - 1])) --e;
  return s.substr(b, e - b);
}

const std::unordered_map<std::u32string, char32_t>& NamedEntities() {
  // Entity names with their ';'. Those HTML5 also accepts without ';' are in kNoSemicolon.
  static const auto* m = new std::unordered_map<std::u32string, char32_t>{
      {U"amp;", U'&'},     {U"lt;", U'<'},       {U"gt;", U'>'},      {U"quot;", U'"'},
      {U"apos;", U'\''},   {U"nbsp;", 0xA0},     {U"copy;", 0xA9},    {U"reg;", 0xAE},
      {U"trade;", 0x2122}, {U"hellip;", 0x2026}, {U"mdash;", 0x2014}, {U"ndash;", 0x2013},
      {U"lsquo;", 0x2018}, {U"rsquo;", 0x2019},  {U"ldquo;", 0x201C}, {U"rdquo;", 0x201D},
      {U"deg;", 0xB0},     {U"plusmn;", 0xB1},   {U"times;", 0xD7},   {U"micro;", 0xB5},
      {U"middot;", 0xB7},  {U"eacute;", 0xE9},   {U"euro;", 0x20AC},  {U"shy;", 0xAD}};
  return *m;
}

bool AcceptedWithoutSemicolon(const U32& name) {
  static const std::array<U32, 14> kNoSemicolon = {U"amp", U"AMP",  U"lt",     U"LT",   U"gt",
                                                   U"GT",  U"quot", U"QUOT",   U"nbsp", U"copy",
                                                   U"reg", U"deg",  U"plusmn", U"micro"};
  for (const U32& n : kNoSemicolon) {
    if (n == name) return true;
  }
  return false;
}

char32_t NamedNoSemicolon(const U32& name) {
  U32 lower;
  for (char32_t c : name) lower.push_back(c >= U'A' && c <= U'Z' ? c + 32 : c);
  return NamedEntities().at(lower + U";");
}

// html.unescape's numeric reference rules (html/__init__.py _replace_charref).
U32 NumericReference(uint64_t num) {
  if (num == 0) return U"\uFFFD";
  if (num == 0x0D) return U"\r";
  if (num >= 0x80 && num <= 0x9F) return U32(1, kCp1252High[num - 0x80]);
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return U"\uFFFD";
  if ((num >= 0x1 && num <= 0x8) || (num >= 0xE && num <= 0x1F) || (num >= 0x7F && num <= 0x9F) ||
      (num >= 0xFDD0 && num <= 0xFDEF) || num == 0xB || (num & 0xFFFF) == 0xFFFE ||
      (num & 0xFFFF) == 0xFFFF) {
    return U"";
  }
  return U32(1, static_cast<char32_t>(num));
}

bool IsHexDigit(char32_t c) {
  return (c >= U'0' && c <= U'9') || (c >= U'a' && c <= U'f') || (c >= U'A' && c <= U'F');
}

U32 Unescape(const U32& s) {
  U32 out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] != U'&' || i + 1 >= s.size()) {
      out.push_back(s[i++]);
      continue;
    }
    size_t j = i + 1;
    if (s[j] == U'#') {
      const bool hex = j + 1 < s.size() && (s[j + 1] == U'x' || s[j + 1] == U'X');
      size_t k = j + (hex ? 2 : 1);
      uint64_t num = 0;
      const size_t digits_begin = k;
      while (k < s.size() && (hex ? IsHexDigit(s[k]) : (s[k] >= U'0' && s[k] <= U'9'))) {
        const char32_t d = s[k];
        const uint64_t v = d <= U'9' ? d - U'0' : (d | 0x20) - U'a' + 10;
        num = std::min<uint64_t>(num * (hex ? 16 : 10) + v, 0x7FFFFFFFu);
        ++k;
      }
      if (k == digits_begin) {
        out.push_back(s[i++]);
        continue;
      }
      if (k < s.size() && s[k] == U';') ++k;
      out += NumericReference(num);
      i = k;
      continue;
    }
    // [^\t\n\f <&#;]{1,32};?
    size_t k = j;
    while (k < s.size() && k - j < 32 && s[k] != U'\t' && s[k] != U'\n' && s[k] != U'\f' &&
           s[k] != U' ' && s[k] != U'<' && s[k] != U'&' && s[k] != U'#' && s[k] != U';') {
      ++k;
    }
    if (k == j) {
      out.push_back(s[i++]);
      continue;
    }
    const bool semicolon = k < s.size() && s[k] == U';';
    const U32 name = s.substr(j, k - j);
    if (semicolon) {
      auto it = NamedEntities().find(name + U";");
      if (it != NamedEntities().end()) {
        out.push_back(it->second);
        i = k + 1;
        continue;
      }
    }
    // Longest prefix that HTML5 accepts without ';', as html.unescape does.
    bool replaced = false;
    for (size_t len = name.size(); len > 1; --len) {
      const U32 prefix = name.substr(0, len);
      if (AcceptedWithoutSemicolon(prefix)) {
        out.push_back(NamedNoSemicolon(prefix));
        i = j + len;
        replaced = true;
        break;
      }
    }
    if (!replaced) out.push_back(s[i++]);
  }
  return out;
}

}  // namespace

std::string FtfyFixText(std::string_view text) {
  U32 s = DecodeUtf8(text);
  // ftfy decides on HTML once, from the input, then repeats its fixes until nothing changes.
  const bool unescape_html = s.find(U'<') == U32::npos;
  for (int round = 0; round < 16; ++round) {
    U32 fixed = unescape_html ? Unescape(s) : s;
    fixed = RemoveTerminalEscapes(fixed);
    fixed = FixWholeTextMojibake(fixed);
    fixed = Normalize(FixCharacters(fixed), /*nfkc=*/false);
    if (fixed == s) break;
    s = std::move(fixed);
  }
  return EncodeUtf8(s);
}

std::string ReplaceInvalidUtf8(std::string_view bytes) { return EncodeUtf8(DecodeUtf8(bytes)); }

std::string HtmlUnescape(std::string_view text) {
  if (text.find('&') == std::string_view::npos) return std::string(text);
  return EncodeUtf8(Unescape(DecodeUtf8(text)));
}

std::string BasicClean(std::string_view text) {
  const std::string fixed = FtfyFixText(text);
  const std::string once = HtmlUnescape(fixed);
  return EncodeUtf8(StripPythonSpace(DecodeUtf8(HtmlUnescape(once))));
}

std::string WhitespaceCleanLower(std::string_view text) {
  const U32 s = DecodeUtf8(text);
  U32 collapsed;
  for (size_t i = 0; i < s.size(); ++i) {
    if (IsPythonSpace(s[i])) {
      while (i + 1 < s.size() && IsPythonSpace(s[i + 1])) ++i;
      collapsed.push_back(U' ');
    } else {
      collapsed.push_back(s[i]);
    }
  }
  icu::UnicodeString u = ToIcu(StripPythonSpace(collapsed));
  u.toLower(icu::Locale::getRoot());
  std::string out;
  u.toUTF8String(out);
  return out;
}

std::vector<std::string> PreTokenize(std::string_view text) {
  static const std::array<U32, 9> kLiterals = {
      U"<|startoftext|>", U"<|endoftext|>", U"'s", U"'t", U"'re", U"'ve", U"'m", U"'ll", U"'d"};
  const U32 s = DecodeUtf8(text);
  std::vector<std::string> pieces;
  size_t i = 0;
  while (i < s.size()) {
    size_t end = i;
    for (const U32& lit : kLiterals) {
      if (s.compare(i, lit.size(), lit) == 0) {
        end = i + lit.size();
        break;
      }
    }
    if (end == i && IsLetter(s[i])) {
      while (end < s.size() && IsLetter(s[end])) ++end;
    } else if (end == i && IsNumber(s[i])) {
      end = i + 1;
    } else if (end == i && !IsPythonSpace(s[i])) {
      while (end < s.size() && !IsPythonSpace(s[end]) && !IsLetter(s[end]) && !IsNumber(s[end])) {
        ++end;
      }
    }
    if (end == i) {
      ++i;  // whitespace: findall skips it
      continue;
    }
    pieces.push_back(EncodeUtf8(s.substr(i, end - i)));
    i = end;
  }
  return pieces;
}

}  // namespace clisc::text
