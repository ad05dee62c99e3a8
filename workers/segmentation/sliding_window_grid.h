// The geometry of whole-volume U-Net inference, free of LibTorch: where the sliding windows go,
// how much each voxel of a window counts when overlapping predictions are blended, and the
// nearest-neighbour index map of the reference's scipy.ndimage.zoom(order=0) resize.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace clisc::segmentation {

// Window starts along one axis, as nnU-Net's compute_steps_for_sliding_window places them:
// target step = patch * (1 - overlap) (at least one voxel), n = ceil((size - patch) / step) + 1
// windows, spread evenly from 0 to size - patch: start_i = round(i * (size - patch) / (n - 1))
// (round half to even, as np.round). Every voxel of [0, size) is covered, consecutive windows
// overlap by at least `overlap` of the patch, and the last window ends exactly at `size`.
// A size not larger than the patch gives the single start {0}: the caller pads the volume up to
// the patch first (PaddingBefore below); this function never returns a window that ends past
// max(size, patch). Preconditions: size >= 1, patch >= 1, overlap in [0, 1).
std::vector<int64_t> SlidingWindowStarts(int64_t size, int64_t patch, double overlap);

// Voxels to add before the data when an axis of `size` is padded up to `patch` (0 when
// size >= patch): the data sits centred, the odd voxel goes after it, as nnU-Net's pad_nd_image
// does.
int64_t PaddingBefore(int64_t size, int64_t patch);

// One axis of the Gaussian importance map, normalized so its maximum (at patch / 2) is 1:
// w(i) = exp(-(i - patch/2)^2 / (2 sigma^2)) with sigma = sigma_scale * patch, and 0 farther than
// scipy.ndimage.gaussian_filter's kernel radius (int(4 sigma + 0.5)). sigma_scale <= 0 gives a
// flat profile of ones (plain averaging of the windows).
std::vector<double> GaussianProfile(int64_t patch, double sigma_scale);

// The (z, y, x) importance map over one patch, in C order (x fastest): the product of the three
// profiles, which is what nnU-Net's compute_gaussian gets from gaussian_filter of a centred delta,
// divided by its maximum (so the centre weighs 1). Zeros (beyond the kernel radius) are replaced
// by the smallest nonzero value, so every voxel of every window has a positive weight and the
// blend never divides by zero.
std::vector<float> GaussianImportanceMap(const std::array<int64_t, 3>& patch, double sigma_scale);

// scipy.ndimage.zoom(order=0, grid_mode=False, mode="constant") along one axis from `in` to `out`
// voxels: output i reads input floor(c + 0.5) with c = i * z, z = (in - 1) / (out - 1) in double
// precision (z = 1 when out == 1), so the first and last voxels map onto each other. When the
// rounding of z puts c past in - 1 (e.g. in 64 -> out 155, or 128 -> 154, at the last output),
// scipy's constant mode writes cval (0) there instead; that output's entry is -1. The resize is
// separable, so a 3D zoom applies the three axes' maps. Requires in, out >= 1.
std::vector<int64_t> NearestZoomIndices(int64_t in, int64_t out);

}  // namespace clisc::segmentation
