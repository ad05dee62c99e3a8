// The report page: one self-contained HTML file (inline CSS, inline SVG plots, overlay PNGs as
// data: URIs, a content security policy that forbids any network load) and a tiny inline script
// that records, on the body's data attributes, how many images loaded and whether a script error
// happened, so a headless browser can check the page.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "report/overlay_images.h"
#include "report/report_data.h"

namespace clisc::report {

// Escapes & < > " ' for text and attribute values.
std::string EscapeHtml(std::string_view text);
std::string Base64Encode(std::string_view bytes);

std::string RenderReportHtml(const RunReportData& data, const std::vector<CaseOverlay>& overlays,
                             const std::string& title);

}  // namespace clisc::report
