// Whole-volume prediction with the 3D U-Net (METHOD.md "Inference", REFERENCE.md 7.2 and 8.1).
// Two modes, chosen by UNetInferenceOptions::mode:
//  - "sliding_window" (default): native resolution. The volume is padded up to at least the patch
//    with each channel's minimum (the background after z-scoring), tiled with patch-sized windows
//    that overlap by `overlap` (nnU-Net/MONAI placement), run `batch_size` windows per forward,
//    and the softmax probabilities are blended with a Gaussian importance map
//    (sigma = gaussian_sigma_scale * patch), divided by the summed weights, and argmaxed.
//  - "reference_resize": the reference's test_single_volume: nearest (scipy zoom order 0) resize
//    of the whole volume to the patch size, one forward pass, argmax, nearest resize back.
// Post-processing (largest component for pseudo-labels, REFERENCE 7.2) is the caller's step:
// common/morphology.h's KeepLargestComponent (26-connectivity, ties keep all) is that operation.
#pragma once

#include <vector>

#include "common/status.h"
#include "common/volume.h"
#include "workers/models/unet/unet3d.h"
#include "workers/roles/unet_engine.h"

namespace clisc::models {

// Argmax labels (0 background, 1 tumor; in general 0..num_classes-1) for one volume given as one
// FloatVolume per input channel, all on one grid. The result has that grid and the channels'
// geometry. The model runs in eval() mode under NoGradGuard; its previous train/eval mode is
// restored afterwards. The model must already be on options.device.
// Errors: INVALID_ARGUMENT for no channels, a channel count other than the model's in_channels,
// channels whose sizes differ, an unknown mode, a patch that is not a positive multiple of
// model->size_multiple(), overlap outside [0, 1), batch_size < 1, or a bad device/precision;
// DATA_LOSS for channels on the same voxel grid whose geometries disagree; INTERNAL for a
// LibTorch failure during the forward pass.
StatusOr<LabelVolume> PredictUNetLabels(UNet3d& model, const std::vector<FloatVolume>& channels,
                                        const roles::UNetInferenceOptions& options);

// The blended foreground probability (softmax channel 1 for sliding_window; for
// reference_resize, channel 1 of the single forward resized back by nearest neighbour) on the
// input grid. Same rules and errors as PredictUNetLabels; needs num_classes >= 2.
StatusOr<FloatVolume> PredictUNetProbabilities(UNet3d& model,
                                               const std::vector<FloatVolume>& channels,
                                               const roles::UNetInferenceOptions& options);

}  // namespace clisc::models
