// MR contrasts for the semi-synthetic BraTS dataset: FLAIR, T1, T1ce and T2 images from the
// tissue fractions of the warped template and the soft tumor regions, with per-case intensity
// variation, a smooth multiplicative bias field and Rician noise, stored as int16 in a BraTS-like
// range with background exactly 0 (BraTS is skull stripped).
#pragma once

#include <cstdint>

#include "common/brats_layout.h"
#include "common/synth_anatomy.h"
#include "common/synth_tumor.h"
#include "common/volume.h"

namespace clisc {

// Signal of each tissue relative to white matter, and the scale that turns it into stored
// values. Tumor levels are the centres of per-case random ranges.
struct ContrastLevels {
  double csf = 0, gray_matter = 0, white_matter = 1;
  double edema = 1, enhancing = 1, necrosis = 1;
  double scale = 300;  // stored value of white matter
};

// The nominal levels of a modality: FLAIR (CSF dark, GM above WM, edema and tumor bright), T1
// (WM bright, CSF dark, tumor hypointense), T1ce (T1 with a bright enhancing rim), T2 (CSF
// brightest, edema bright).
ContrastLevels NominalContrast(Modality modality);

// Per-case variation of the nominal levels: tissue levels within a few percent, tumor levels
// within a wide range (real gliomas differ a lot), the scale by up to ~30 %.
ContrastLevels RandomContrast(Modality modality, SynthRandom& rng);

struct ImagingOptions {
  double bias_min = 0.15, bias_max = 0.20;    // peak multiplicative bias, +-
  double noise_min = 0.02, noise_max = 0.04;  // Rician sigma as a share of white matter
};

// Renders one modality. `tumor` may be null (tumor-free case). Consumes `rng` in a fixed order,
// so the same stream gives the same image.
Volume<int16_t> RenderContrast(const ContrastLevels& levels, const CaseAnatomy& anatomy,
                               const TumorFields* tumor, SynthRandom& rng,
                               const ImagingOptions& options = {});

}  // namespace clisc
