#include "common/morphology.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <utility>

namespace clisc {
namespace {

// Along x, one row at a time: the window [x - r, x + r] of a 0/1 row, summed by a running count.
// Erosion keeps a voxel when the whole window is set (a window that leaves the array erodes,
// since outside is background); dilation when any voxel of the window, clipped to the array, is.
void CubePassAlongX(std::vector<uint8_t>& data, const Dims& size, int radius, bool dilate) {
  const int64_t n = size.x;
  std::vector<int64_t> prefix(static_cast<size_t>(n) + 1, 0);
  for (int64_t row = 0; row < size.y * size.z; ++row) {
    uint8_t* line = data.data() + row * n;
    for (int64_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + line[i];
    for (int64_t i = 0; i < n; ++i) {
      const int64_t lo = i - radius, hi = i + radius;  // inclusive window
      if (dilate) {
        line[i] = prefix[std::min(hi, n - 1) + 1] - prefix[std::max(lo, int64_t{0})] > 0;
      } else {
        line[i] = lo >= 0 && hi < n && prefix[hi + 1] - prefix[lo] == 2 * radius + 1;
      }
    }
  }
}

// Along y or z: each output row combines the 2r + 1 source rows around it, `stride` apart (rows
// outside the array count as background), so every step reads whole contiguous rows.
void CubePassAcrossRows(std::vector<uint8_t>& data, const Dims& size, int axis, int radius,
                        bool dilate) {
  const std::vector<uint8_t> source = data;
  const int64_t nx = size.x;
  const int64_t n = axis == 1 ? size.y : size.z;        // positions along the axis
  const int64_t stride = axis == 1 ? nx : nx * size.y;  // between neighbouring rows
  const int64_t outer = axis == 1 ? size.z : 1;         // independent blocks (z slices for y)
  const int64_t inner = axis == 1 ? 1 : size.y;         // rows per position (y rows for z)
  const int64_t outer_stride = nx * size.y;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t r = 0; r < inner; ++r) {
        const int64_t row = o * outer_stride + i * stride + r * nx;
        uint8_t* out = data.data() + row;
        if (!dilate && (i < radius || i + radius >= n)) {
          std::fill(out, out + nx, 0);  // the window leaves the array
          continue;
        }
        std::fill(out, out + nx, dilate ? 0 : 1);
        for (int64_t k = std::max<int64_t>(i - radius, 0); k <= std::min(i + radius, n - 1); ++k) {
          const uint8_t* in = source.data() + o * outer_stride + k * stride + r * nx;
          if (dilate) {
            for (int64_t x = 0; x < nx; ++x) out[x] |= in[x];
          } else {
            for (int64_t x = 0; x < nx; ++x) out[x] &= in[x];
          }
        }
      }
    }
  }
}

Volume<uint8_t> CubeFilter(const Volume<uint8_t>& mask, int radius, bool dilate) {
  Volume<uint8_t> out = mask.LikeThis<uint8_t>();
  for (size_t i = 0; i < out.voxels().size(); ++i) out[i] = mask[i] != 0;
  if (radius <= 0) return out;
  CubePassAlongX(out.voxels(), mask.size(), radius, dilate);
  CubePassAcrossRows(out.voxels(), mask.size(), 1, radius, dilate);
  CubePassAcrossRows(out.voxels(), mask.size(), 2, radius, dilate);
  return out;
}

struct Offset {
  int dx, dy, dz;
};

std::vector<Offset> NeighbourOffsets(Connectivity connectivity) {
  // A neighbour differs in at most `reach` coordinates: 1 for faces, 2 adds edges, 3 corners.
  const int reach = connectivity == Connectivity::k6    ? 1
                    : connectivity == Connectivity::k18 ? 2
                                                        : 3;
  std::vector<Offset> offsets;
  for (int dz = -1; dz <= 1; ++dz)
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        const int moved = std::abs(dx) + std::abs(dy) + std::abs(dz);
        if (moved > 0 && moved <= reach) offsets.push_back({dx, dy, dz});
      }
  return offsets;
}

// Keeps the components whose label passes `keep` (indexed by label - 1).
Volume<uint8_t> SelectComponents(const Components& components, const std::vector<bool>& keep) {
  Volume<uint8_t> out = components.labels.LikeThis<uint8_t>();
  for (size_t i = 0; i < out.voxels().size(); ++i) {
    const int32_t label = components.labels[i];
    out[i] = label > 0 && keep[static_cast<size_t>(label - 1)];
  }
  return out;
}

}  // namespace

namespace {

// One pass with the 6-connected cross: every foreground voxel gets keep(all_set), where all_set
// says whether its six face neighbours are all foreground (never on the array edge, since outside
// is background); background stays 0.
template <typename Keep>
Volume<uint8_t> CrossFilter(const Volume<uint8_t>& mask, Keep keep) {
  const Dims& s = mask.size();
  Volume<uint8_t> out = mask.LikeThis<uint8_t>();
  const int64_t plane = s.x * s.y;
  const uint8_t* in = mask.data();
  uint8_t* o = out.data();
  for (int64_t z = 0; z < s.z; ++z) {
    for (int64_t y = 0; y < s.y; ++y) {
      const int64_t row = z * plane + y * s.x;
      const bool edge_row = y == 0 || y == s.y - 1 || z == 0 || z == s.z - 1;
      for (int64_t x = 0; x < s.x; ++x) {
        const int64_t i = row + x;
        if (!in[i]) continue;
        if (edge_row || x == 0 || x == s.x - 1) {
          o[i] = keep(false);
          continue;
        }
        o[i] = keep(in[i - 1] && in[i + 1] && in[i - s.x] && in[i + s.x] && in[i - plane] &&
                    in[i + plane]);
      }
    }
  }
  return out;
}

}  // namespace

Volume<uint8_t> ErodeCross(const Volume<uint8_t>& mask) {
  return CrossFilter(mask, [](bool all_set) -> bool { return all_set; });
}

Volume<uint8_t> ExtractBorder(const Volume<uint8_t>& mask) {
  return CrossFilter(mask, [](bool all_set) -> bool { return !all_set; });
}

Volume<uint8_t> ErodeCube(const Volume<uint8_t>& mask, int radius) {
  return CubeFilter(mask, radius, /*dilate=*/false);
}

Volume<uint8_t> DilateCube(const Volume<uint8_t>& mask, int radius) {
  return CubeFilter(mask, radius, /*dilate=*/true);
}

Volume<uint8_t> OpenCube(const Volume<uint8_t>& mask, int radius) {
  return DilateCube(ErodeCube(mask, radius), radius);
}

Components LabelComponents(const Volume<uint8_t>& mask, Connectivity connectivity) {
  const Dims& s = mask.size();
  Components result;
  result.labels = mask.LikeThis<int32_t>(0);
  int32_t* labels = result.labels.data();
  // One raster scan joins each voxel to its already visited neighbours (the half of the
  // neighbourhood with a smaller index) through a union-find over provisional labels; a second
  // scan renumbers the roots in the order they are first met.
  std::vector<Offset> before;
  for (const Offset& o : NeighbourOffsets(connectivity)) {
    if (o.dz < 0 || (o.dz == 0 && (o.dy < 0 || (o.dy == 0 && o.dx < 0)))) before.push_back(o);
  }
  std::vector<int32_t> parent = {0};  // parent[label]; label 0 is background
  auto find = [&parent](int32_t a) {
    while (parent[a] != a) {
      parent[a] = parent[parent[a]];  // path halving
      a = parent[a];
    }
    return a;
  };
  const int64_t plane = s.x * s.y;
  for (int64_t z = 0; z < s.z; ++z) {
    for (int64_t y = 0; y < s.y; ++y) {
      for (int64_t x = 0; x < s.x; ++x) {
        const int64_t i = z * plane + y * s.x + x;
        if (!mask[i]) continue;
        int32_t root = 0;
        for (const Offset& o : before) {
          const int64_t nx = x + o.dx, ny = y + o.dy, nz = z + o.dz;
          if (nx < 0 || nx >= s.x || ny < 0 || ny >= s.y || nz < 0) continue;
          const int32_t other = labels[i + o.dz * plane + o.dy * s.x + o.dx];
          if (other == 0) continue;
          int32_t other_root = find(other);
          if (root == 0) {
            root = other_root;
          } else if (other_root != root) {
            // Keep the smaller label as the root, so each root is its component's oldest label.
            if (other_root < root) std::swap(root, other_root);
            parent[other_root] = root;
          }
        }
        if (root == 0) {
          root = static_cast<int32_t>(parent.size());
          parent.push_back(root);
        }
        labels[i] = root;
      }
    }
  }
  std::vector<int32_t> final_label(parent.size(), 0);
  for (int64_t i = 0; i < mask.count(); ++i) {
    if (labels[i] == 0) continue;
    int32_t& label = final_label[find(labels[i])];
    if (label == 0) {
      result.sizes.push_back(0);
      label = static_cast<int32_t>(result.sizes.size());
    }
    labels[i] = label;
    ++result.sizes[label - 1];
  }
  return result;
}

Volume<uint8_t> KeepLargestComponent(const Volume<uint8_t>& mask, Connectivity connectivity) {
  const Components components = LabelComponents(mask, connectivity);
  if (components.count() == 0) return SelectComponents(components, {});
  const int64_t largest = *std::max_element(components.sizes.begin(), components.sizes.end());
  std::vector<bool> keep(components.sizes.size());
  for (size_t i = 0; i < keep.size(); ++i) keep[i] = components.sizes[i] == largest;
  return SelectComponents(components, keep);
}

Volume<uint8_t> RemoveSmallComponents(const Volume<uint8_t>& mask, double min_fraction,
                                      Connectivity connectivity) {
  const Components components = LabelComponents(mask, connectivity);
  if (components.count() == 0) return SelectComponents(components, {});
  const int64_t largest = *std::max_element(components.sizes.begin(), components.sizes.end());
  const double min_size = min_fraction * static_cast<double>(largest);
  std::vector<bool> keep(components.sizes.size());
  for (size_t i = 0; i < keep.size(); ++i) {
    keep[i] = !(static_cast<double>(components.sizes[i]) < min_size);
  }
  return SelectComponents(components, keep);
}

int64_t CountForeground(const Volume<uint8_t>& mask) {
  return std::count_if(mask.voxels().begin(), mask.voxels().end(),
                       [](uint8_t v) { return v != 0; });
}

}  // namespace clisc
