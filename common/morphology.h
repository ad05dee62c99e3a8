// Binary morphology on label volumes (nonzero = foreground): the operations the pipeline and the
// metrics share, each with the exact semantics of the scipy/skimage call the reference uses.
// Outputs are 0/1 volumes with the input's geometry. Voxels outside the array count as background
// everywhere (scipy's border_value=0), so a mask touching the array edge has border voxels there.
#pragma once

#include <cstdint>
#include <vector>

#include "common/volume.h"

namespace clisc {

// Neighbourhoods in 3D: faces (6), faces + edges (18), faces + edges + corners (26). These are
// scipy's generate_binary_structure(3, 1|2|3); skimage's default for 3D labelling is 26.
enum class Connectivity { k6 = 6, k18 = 18, k26 = 26 };

// One erosion with the 6-connected cross (scipy.ndimage.binary_erosion's default structure).
Volume<uint8_t> ErodeCross(const Volume<uint8_t>& mask);

// The surface medpy and MONAI measure distances between: mask XOR ErodeCross(mask), i.e. the
// foreground voxels with at least one face neighbour in the background or outside the array.
Volume<uint8_t> ExtractBorder(const Volume<uint8_t>& mask);

// Erosion and dilation with a (2r+1)^3 cube, i.e. a Chebyshev ball of radius r voxels.
Volume<uint8_t> ErodeCube(const Volume<uint8_t>& mask, int radius = 1);
Volume<uint8_t> DilateCube(const Volume<uint8_t>& mask, int radius = 1);

// Opening with a (2r+1)^3 cube: scipy.ndimage.binary_opening(mask, structure=ones((3,3,3))) for
// r = 1. Removes every part of the mask that no full cube fits in.
Volume<uint8_t> OpenCube(const Volume<uint8_t>& mask, int radius = 1);

// Connected components of the foreground. Labels run 1..count() in the order in which a raster
// scan (x fastest, then y, then z) first meets each component; background is 0.
struct Components {
  Volume<int32_t> labels;
  std::vector<int64_t> sizes;  // sizes[i] = voxel count of label i + 1
  int64_t count() const { return static_cast<int64_t>(sizes.size()); }
};
Components LabelComponents(const Volume<uint8_t>& mask,
                           Connectivity connectivity = Connectivity::k26);

// Keeps the largest component; when several share the largest size all of them are kept, as the
// reference's skimage-based version does. An empty mask stays empty.
Volume<uint8_t> KeepLargestComponent(const Volume<uint8_t>& mask,
                                     Connectivity connectivity = Connectivity::k26);

// Drops every component whose size is < min_fraction * (size of the largest component); the
// reference's largestConnectComponent_3d(ratio=3) is min_fraction = 1/3 with 26-connectivity.
Volume<uint8_t> RemoveSmallComponents(const Volume<uint8_t>& mask, double min_fraction,
                                      Connectivity connectivity = Connectivity::k26);

// Number of nonzero voxels.
int64_t CountForeground(const Volume<uint8_t>& mask);

}  // namespace clisc
