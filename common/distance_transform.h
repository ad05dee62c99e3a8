// Exact Euclidean distance transform (EDT) of a binary volume with anisotropic voxel spacing.
//
// The transform is separable: the distance along x comes from the gaps between the features of
// each line, then y and z each take the lower envelope of parabolas over the previous pass
// (Felzenszwalb & Huttenlocher, "Distance Transforms of Sampled Functions", 2012). Everything is
// in double, squared until the end, so results agree with
// scipy.ndimage.distance_transform_edt(~features, sampling=spacing) to a few ulp: both give the
// exact minimum over the features of sum_i (spacing_i * offset_i)^2.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "common/volume.h"

namespace clisc {

// Voxel sizes in mm, in (x, y, z) order like Geometry::spacing. A spacing that is not positive
// and finite makes every distance NaN.
using Spacing3 = std::array<double, 3>;

// Squared distance (mm^2) from every voxel to the nearest nonzero voxel of `features`, which is
// stored x-fastest with the given size. Voxels of a volume without features get +infinity.
std::vector<double> SquaredDistanceTransform(const uint8_t* features, const Dims& size,
                                             const Spacing3& spacing);

// The same squared distances, read only at the nonzero voxels of `queries` (same size and layout),
// in raster order: what the surface metrics need. The last (z) pass runs only at the queries: a
// query searches the few neighbouring slices that its own slice's distance leaves possible, and
// only columns where that bound is far get the full envelope pass.
std::vector<double> SquaredDistancesAt(const uint8_t* features, const uint8_t* queries,
                                       const Dims& size, const Spacing3& spacing);

// Same as the first, as a volume with the geometry of `features`.
Volume<double> SquaredDistanceTransform(const Volume<uint8_t>& features, const Spacing3& spacing);

// Distance in mm (the square root of the above).
Volume<double> DistanceTransform(const Volume<uint8_t>& features, const Spacing3& spacing);

}  // namespace clisc
