#include "report/report_html.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "report/svg_plots.h"

namespace clisc::report {
namespace {

using nlohmann::json;

constexpr char kStyle[] = R"(
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}td.l,th.l{text-align:left}
tr.final td{background:#fff3cd;font-weight:bold}
.warn{background:#fdecea;border:1px solid #e0a0a0;padding:8px;margin:8px 0}
.missing{background:#f4f4f4;border:1px solid #ccc;padding:8px;margin:8px 0}
pre{background:#f8f8f8;padding:8px;overflow:auto;font-size:12px}
figure{display:inline-block;margin:8px;vertical-align:top}
figcaption{font-size:12px;max-width:320px}
.swatch{display:inline-block;width:12px;height:12px;vertical-align:middle;margin:0 4px}
.plots svg{margin:8px;border:1px solid #eee}
)";

// Counts the images that loaded and records script errors, for a headless check (--dump-dom).
constexpr char kSelfCheck[] = R"(
window.__reportErrors = 0;
window.addEventListener('error', function () { window.__reportErrors++; }, true);
window.addEventListener('load', function () {
  var loaded = 0, broken = 0;
  for (var i = 0; i < document.images.length; i++) {
    var img = document.images[i];
    if (img.complete && img.naturalWidth > 0) loaded++; else broken++;
  }
  var d = document.body.dataset;
  d.imagesLoaded = String(loaded);
  d.imagesBroken = String(broken);
  d.windowErrors = String(window.__reportErrors);
  d.selfCheck = 'done';
});
)";

std::string Fixed(double value, int decimals) {
  if (!std::isfinite(value)) return "–";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

double NumberAt(const json& doc, std::initializer_list<const char*> path) {
  const json* node = &doc;
  for (const char* key : path) {
    if (!node->is_object() || !node->contains(key)) return NAN;
    node = &(*node)[key];
  }
  return node->is_number() ? node->get<double>() : NAN;
}

std::string IntText(const json& doc, std::initializer_list<const char*> path) {
  const double v = NumberAt(doc, path);
  return std::isfinite(v) ? std::to_string(static_cast<int64_t>(v)) : "–";
}

std::string Td(const std::string& text, bool left = false) {
  return std::string(left ? "<td class=\"l\">" : "<td>") + EscapeHtml(text) + "</td>";
}

std::string Th(const std::string& text, bool left = false) {
  return std::string(left ? "<th class=\"l\">" : "<th>") + EscapeHtml(text) + "</th>";
}

std::string Missing(const std::string& text) {
  return "<p class=\"missing\">" + EscapeHtml(text) + "</p>\n";
}

std::string Duration(std::optional<int64_t> ms) {
  if (!ms) return "–";
  char buffer[64];
  const double s = *ms / 1000.0;
  if (s < 120) {
    std::snprintf(buffer, sizeof buffer, "%.1f s", s);
  } else if (s < 7200) {
    std::snprintf(buffer, sizeof buffer, "%.1f min", s / 60);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.2f h", s / 3600);
  }
  return buffer;
}

std::string Count(const std::optional<int64_t>& n) { return n ? std::to_string(*n) : "unknown"; }

std::string RunSection(const RunReportData& data) {
  std::string html = "<h2 id=\"run\">Run</h2>\n<table>\n";
  auto row = [&](const std::string& key, const std::string& value) {
    html += "<tr>" + Th(key, true) + Td(value.empty() ? "unknown" : value, true) + "</tr>\n";
  };
  row("run", data.run_name);
  row("mode", data.mode);
  for (const auto& [stage, backend] : data.backends) {
    row("backend " + stage, backend + (IsHeuristicBackend(backend) ? " (heuristic stand-in)" : ""));
  }
  row("data dir", data.data_dir);
  row("workdir", data.workdir.string());
  row("state", data.run_state);
  row("created", data.created);
  row("finished", data.finished.empty() ? "not finished" : data.finished);
  row("cases planned", Count(data.splits.planned));
  row("train / valid / test", Count(data.splits.train) + " / " + Count(data.splits.valid) + " / " +
                                  Count(data.splits.test));
  html += "</table>\n";
  if (data.config_yaml.empty()) {
    html += Missing("No run config (config.yaml) in the workdir.");
  } else {
    html += "<details><summary>Run config (config.yaml)</summary><pre>" +
            EscapeHtml(data.config_yaml) + "</pre></details>\n";
  }
  return html;
}

std::string MetricsSection(const RunReportData& data) {
  std::string html = "<h2 id=\"metrics\">Test-split metrics</h2>\n";
  if (data.variants.empty()) {
    return html + Missing(
                      "No evaluation yet: the run has not evaluated the test split "
                      "(report/data/evaluation.json is missing).");
  }
  html += "<table>\n<tr>" + Th("variant", true) + Th("", true) + Th("cases") +
          Th("Dice mean ± std") + Th("Dice median") + Th("HD95 mean (mm, medpy)") +
          Th("HD95 mean (mm, MONAI)") + Th("HD mean (mm)") + Th("empty pred / GT / both") +
          Th("ref. Dice") + Th("ref. HD95 (voxels)") + "</tr>\n";
  for (const VariantResult& v : data.variants) {
    const json& r = v.row;
    const bool is_final = v.variant == data.final_variant;
    html += std::string(is_final ? "<tr class=\"final\">" : "<tr>") +
            Td(v.variant + (is_final ? " ★ final" : ""), true) + Td(v.title, true) +
            Td(IntText(r, {"cases"})) +
            Td(Fixed(NumberAt(r, {"dice", "mean"}), 4) + " ± " +
               Fixed(NumberAt(r, {"dice", "std"}), 4)) +
            Td(Fixed(NumberAt(r, {"dice", "median"}), 4)) +
            Td(Fixed(NumberAt(r, {"hd95_mm", "mean"}), 2)) +
            Td(Fixed(NumberAt(r, {"hd95_monai_mm", "mean"}), 2)) +
            Td(Fixed(NumberAt(r, {"hd_mm", "mean"}), 2)) +
            Td(IntText(r, {"empty", "pred"}) + " / " + IntText(r, {"empty", "gt"}) + " / " +
               IntText(r, {"empty", "both"})) +
            Td(Fixed(NumberAt(r, {"reference_convention", "dice", "mean"}), 4)) +
            Td(Fixed(NumberAt(r, {"reference_convention", "hd95_voxels", "mean"}), 2)) + "</tr>\n";
  }
  html += "</table>\n";
  if (data.evaluation.is_object() && data.evaluation.contains("note") &&
      data.evaluation["note"].is_string()) {
    html +=
        "<p><small>" + EscapeHtml(data.evaluation["note"].get<std::string>()) + "</small></p>\n";
  }
  // Distributions.
  std::vector<PlotSeries> dice, hd95;
  for (const VariantResult& v : data.variants) {
    PlotSeries d{v.variant, {}, v.variant == data.final_variant}, h = d;
    for (const CaseMetrics& c : v.cases) {
      d.values.push_back(c.dice);
      h.values.push_back(c.hd95_mm);
    }
    dice.push_back(std::move(d));
    hd95.push_back(std::move(h));
  }
  html += "<div class=\"plots\">\n" + StripBoxPlotSvg("Dice per test case", "Dice", dice, 1.0) +
          StripBoxPlotSvg("HD95 per test case", "HD95 (mm)", hd95) + "</div>\n";
  return html;
}

std::string OverlaySection(const RunReportData& data, const std::vector<CaseOverlay>& overlays) {
  std::string html = "<h2 id=\"overlays\">Cases of the final variant</h2>\n";
  if (data.final_variant.empty()) return html + Missing("No final variant evaluated yet.");
  if (overlays.empty()) {
    return html + Missing("No test case of " + data.final_variant + " has a Dice to rank by.");
  }
  html += "<p>Axial slice with the most GT tumour voxels, " + EscapeHtml(data.modalities.front()) +
          " in gray; <span class=\"swatch\" style=\"background:#00dc00\"></span>GT contour, "
          "<span class=\"swatch\" style=\"background:#ff00ff\"></span>prediction contour "
          "(" +
          EscapeHtml(data.final_variant) + "), white where they coincide.</p>\n";
  for (const CaseOverlay& o : overlays) {
    const std::string caption = o.rank + ": " + o.case_id + ", Dice " + Fixed(o.dice, 4);
    html += "<figure>";
    if (o.error.empty()) {
      html += "<img alt=\"" + EscapeHtml(caption) + "\" src=\"data:image/png;base64," +
              Base64Encode(o.png) + "\">";
      html += "<figcaption>" + EscapeHtml(caption + ", slice z=" + std::to_string(o.slice_z)) +
              " (" + EscapeHtml(o.relative_path) + ")</figcaption>";
    } else {
      html += Missing("No overlay for " + caption + ": " + o.error);
    }
    html += "</figure>\n";
  }
  return html;
}

std::string StagesSection(const RunReportData& data) {
  std::string html = "<h2 id=\"stages\">Stages</h2>\n<h3>Timings (ledger)</h3>\n";
  if (!data.ledger) {
    html += Missing("No stage timings: the ledger (ledger.db) is missing or unreadable.");
  } else {
    html += "<table>\n<tr>" + Th("stage", true) + Th("tasks") + Th("succeeded") + Th("failed") +
            Th("blocked / cancelled / open") + Th("wall time") + Th("summed task time") +
            Th("failed / lost attempts") + Th("retries") + "</tr>\n";
    for (const StageTimingRow& s : data.ledger->stages) {
      html += "<tr>" + Td(s.stage, true) + Td(std::to_string(s.tasks)) +
              Td(std::to_string(s.succeeded)) + Td(std::to_string(s.failed)) +
              Td(std::to_string(s.blocked) + " / " + std::to_string(s.cancelled) + " / " +
                 std::to_string(s.open)) +
              Td(Duration(s.wall_ms())) + Td(Duration(s.task_time_ms)) +
              Td(std::to_string(s.failed_attempts) + " / " + std::to_string(s.lost_attempts)) +
              Td(std::to_string(s.retries)) + "</tr>\n";
    }
    html += "</table>\n";
  }
  html += "<h3>Quality of stages 1-8 (against GT where a case has one)</h3>\n";
  const json& q = data.stage_quality;
  if (!q.is_object() || !q.contains("summary")) {
    return html + Missing("No per-stage quality yet (report/data/stages_1_8.json is missing).");
  }
  html += "<table>\n<tr>" + Th("measure", true) + Th("mean") + Th("median") + Th("min") +
          Th("max") + Th("cases") + "</tr>\n";
  for (const auto& [key, name] :
       {std::pair<const char*, const char*>{"slice_label_accuracy", "slice-label accuracy"},
        {"slice_label_raw_accuracy", "slice-label accuracy (before filtering)"},
        {"cam_dice_raw", "CAM Dice, raw classifier"},
        {"cam_dice_enhanced", "CAM Dice, AMDA-enhanced"},
        {"sam_dice", "SAM pseudo-label Dice"}}) {
    const json& s = q["summary"].value(key, json());
    html += "<tr>" + Td(name, true) + Td(Fixed(NumberAt(s, {"mean"}), 4)) +
            Td(Fixed(NumberAt(s, {"median"}), 4)) + Td(Fixed(NumberAt(s, {"min"}), 4)) +
            Td(Fixed(NumberAt(s, {"max"}), 4)) + Td(IntText(s, {"cases"})) + "</tr>\n";
  }
  html += "</table>\n<p><small>kept slices " + IntText(q, {"summary", "kept_slices"}) +
          ", dropped " + IntText(q, {"summary", "dropped_slices"}) + ", cases with an empty CAM " +
          IntText(q, {"summary", "empty_cam_cases"}) + ", slices without prompts " +
          IntText(q, {"summary", "slices_without_prompts"}) + "</small></p>\n";
  return html;
}

std::string PerCaseSection(const RunReportData& data) {
  std::string html = "<h2 id=\"cases\">Per test case</h2>\n";
  std::set<std::string> ids;
  for (const VariantResult& v : data.variants) {
    for (const CaseMetrics& c : v.cases) ids.insert(c.case_id);
  }
  if (ids.empty()) return html + Missing("No per-case metrics yet (eval/<variant>.json).");
  std::vector<std::map<std::string, const CaseMetrics*>> by_variant;
  html += "<table>\n<tr>" + Th("case", true);
  for (const VariantResult& v : data.variants) {
    html += "<th colspan=\"2\">" + EscapeHtml(v.variant) + "</th>";
    auto& index = by_variant.emplace_back();
    for (const CaseMetrics& c : v.cases) index[c.case_id] = &c;
  }
  html += "</tr>\n<tr><th></th>";
  for (size_t i = 0; i < data.variants.size(); ++i) html += Th("Dice") + Th("HD95 (mm)");
  html += "</tr>\n";
  for (const std::string& id : ids) {
    html += "<tr>" + Td(id, true);
    for (const auto& index : by_variant) {
      auto it = index.find(id);
      if (it == index.end()) {
        html += Td("–") + Td("–");
      } else {
        html += Td(Fixed(it->second->dice, 4)) + Td(Fixed(it->second->hd95_mm, 2));
      }
    }
    html += "</tr>\n";
  }
  return html + "</table>\n";
}

}  // namespace

std::string EscapeHtml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t n =
        (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(n >> shift) & 63];
  }
  if (i < bytes.size()) {
    uint32_t n = uint8_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= uint8_t(bytes[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string RenderReportHtml(const RunReportData& data, const std::vector<CaseOverlay>& overlays,
                             const std::string& title) {
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      // Nothing may come from the network: only inline styles, inline script and data: images.
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n"
      "<title>" +
      EscapeHtml(title) + "</title>\n<style>" + kStyle + "</style>\n<script>" + kSelfCheck +
      "</script>\n</head>\n<body>\n<h1>" + EscapeHtml(title) + "</h1>\n";
  for (const std::string& warning : data.warnings) {
    html +=
        "<p class=\"warn\"><strong>Heuristic backend:</strong> " + EscapeHtml(warning) + "</p>\n";
  }
  if (!data.missing.empty()) {
    html += "<div class=\"missing\"><strong>Missing from this report:</strong><ul>\n";
    for (const std::string& m : data.missing) html += "<li>" + EscapeHtml(m) + "</li>\n";
    html += "</ul></div>\n";
  }
  html += RunSection(data) + MetricsSection(data) + OverlaySection(data, overlays) +
          StagesSection(data) + PerCaseSection(data) + "</body>\n</html>\n";
  return html;
}

}  // namespace clisc::report
