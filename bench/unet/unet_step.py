#!/usr/bin/python3
"""The Python side of bench/unet: the reference's unet_3D under Debian's python3-torch.

A twin of SSL4MIS's networks/unet_3D.py as CLISC trains it (REFERENCE.md 7.1: feature_scale 4,
i.e. channels 16..256, UnetConv3 = 2 x [Conv3d 3^3 -> InstanceNorm3d(affine=False) -> ReLU],
MaxPool3d(2), trilinear x2 upsampling, dropout 0.3 after the centre and the top decoder, Kaiming
normal fan_in on the conv weights), measured two ways with the same thread count as the C++ side:

  step       one SGD step (CE loss, lr 0.01, momentum 0.9, weight decay 1e-4) on a random
             [batch, 1, 128, 128, 128] batch with random 0/1 labels, in train mode;
  inference  sliding-window prediction of one random volume (default 155 x 240 x 240, z y x) with
             128^3 windows, overlap 0.5, Gaussian weights (sigma 1/8 patch), batch 2, as
             workers/models/unet/unet_inference.cc does it (nnU-Net window placement).

Each timing is the median of --steps (or --repeats) runs after --warmup runs. Prints one JSON
object on stdout.
"""
import argparse
import json
import math
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class UnetConv3(nn.Module):
    def __init__(self, in_size, out_size):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv3d(in_size, out_size, 3, 1, 1),
                                   nn.InstanceNorm3d(out_size), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(nn.Conv3d(out_size, out_size, 3, 1, 1),
                                   nn.InstanceNorm3d(out_size), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.conv2(self.conv1(x))


class UnetUp3_CT(nn.Module):
    def __init__(self, in_size, out_size):
        super().__init__()
        self.conv = UnetConv3(in_size + out_size, out_size)
        self.up = nn.Upsample(scale_factor=(2, 2, 2), mode='trilinear')

    def forward(self, skip, deeper):
        up = self.up(deeper)
        offset = up.size()[2] - skip.size()[2]
        skip = F.pad(skip, 2 * [offset // 2, offset // 2, 0])
        return self.conv(torch.cat([skip, up], 1))


class unet_3D(nn.Module):
    def __init__(self, feature_scale=4, n_classes=2, in_channels=1):
        super().__init__()
        filters = [int(x / feature_scale) for x in [64, 128, 256, 512, 1024]]
        self.conv1 = UnetConv3(in_channels, filters[0])
        self.maxpool1 = nn.MaxPool3d(2)
        self.conv2 = UnetConv3(filters[0], filters[1])
        self.maxpool2 = nn.MaxPool3d(2)
        self.conv3 = UnetConv3(filters[1], filters[2])
        self.maxpool3 = nn.MaxPool3d(2)
        self.conv4 = UnetConv3(filters[2], filters[3])
        self.maxpool4 = nn.MaxPool3d(2)
        self.center = UnetConv3(filters[3], filters[4])
        self.up_concat4 = UnetUp3_CT(filters[4], filters[3])
        self.up_concat3 = UnetUp3_CT(filters[3], filters[2])
        self.up_concat2 = UnetUp3_CT(filters[2], filters[1])
        self.up_concat1 = UnetUp3_CT(filters[1], filters[0])
        self.final = nn.Conv3d(filters[0], n_classes, 1)
        self.dropout1 = nn.Dropout(p=0.3)
        self.dropout2 = nn.Dropout(p=0.3)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight.data, a=0, mode='fan_in')

    def forward(self, x):
        conv1 = self.conv1(x)
        conv2 = self.conv2(self.maxpool1(conv1))
        conv3 = self.conv3(self.maxpool2(conv2))
        conv4 = self.conv4(self.maxpool3(conv3))
        center = self.dropout1(self.center(self.maxpool4(conv4)))
        up4 = self.up_concat4(conv4, center)
        up3 = self.up_concat3(conv3, up4)
        up2 = self.up_concat2(conv2, up3)
        up1 = self.dropout2(self.up_concat1(conv1, up2))
        return self.final(up1)


def median_seconds(fn, runs, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def window_starts(size, patch, overlap):  # nnU-Net's compute_steps_for_sliding_window
    if size <= patch:
        return [0]
    step = max(patch * (1 - overlap), 1.0)
    count = int(math.ceil((size - patch) / step)) + 1
    actual = (size - patch) / (count - 1)
    return [int(np.round(actual * i)) for i in range(count)]


def gaussian_map(patch, sigma_scale):  # separable form of nnU-Net's compute_gaussian
    profiles = []
    for p in patch:
        sigma = sigma_scale * p
        radius = int(4 * sigma + 0.5)
        d = np.arange(p) - p // 2
        profiles.append(np.where(np.abs(d) > radius, 0.0, np.exp(-d * d / (2 * sigma * sigma))))
    g = np.einsum('i,j,k->ijk', *profiles)
    g = g / g.max()
    g[g == 0] = g[g != 0].min()
    return torch.from_numpy(g.astype(np.float32))


def sliding_window(model, image, patch, overlap, batch_size, sigma_scale):
    size = image.shape[1:]
    padded = [max(s, p) for s, p in zip(size, patch)]
    before = [(p - s) // 2 if s < p else 0 for s, p in zip(size, patch)]
    if padded != list(size):
        minima = image.flatten(1).min(1).values.view(-1, 1, 1, 1)
        x = minima.expand(image.shape[0], *padded).clone()
        x[:, before[0]:before[0] + size[0], before[1]:before[1] + size[1],
          before[2]:before[2] + size[2]] = image
    else:
        x = image
    starts = [window_starts(s, p, overlap) for s, p in zip(padded, patch)]
    windows = [(z, y, w) for z in starts[0] for y in starts[1] for w in starts[2]]
    g = gaussian_map(patch, sigma_scale)
    probs = torch.zeros(2, *padded)
    weights = torch.zeros(*padded)
    sl = lambda s: tuple(slice(a, a + p) for a, p in zip(s, patch))
    with torch.no_grad():
        for i in range(0, len(windows), batch_size):
            chunk = windows[i:i + batch_size]
            batch = torch.stack([x[(slice(None),) + sl(s)] for s in chunk])
            p = torch.softmax(model(batch).float(), 1) * g
            for k, s in enumerate(chunk):
                probs[(slice(None),) + sl(s)] += p[k]
                weights[sl(s)] += g
    probs = probs / weights
    probs = probs[:, before[0]:before[0] + size[0], before[1]:before[1] + size[1],
                  before[2]:before[2] + size[2]]
    return probs.argmax(0).to(torch.uint8), len(windows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--steps', type=int, default=3, help='timed SGD steps')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--patch', type=int, default=128)
    parser.add_argument('--repeats', type=int, default=1, help='timed inference runs')
    parser.add_argument('--volume', type=int, nargs=3, default=[155, 240, 240],
                        metavar=('Z', 'Y', 'X'))
    parser.add_argument('--skip', choices=['step', 'inference'], action='append', default=[])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(2023)
    model = unet_3D()
    result = {'torch': torch.__version__, 'threads': torch.get_num_threads()}

    if 'step' not in args.skip:
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        p = args.patch
        x = torch.randn(args.batch, 1, p, p, p)
        y = torch.randint(0, 2, (args.batch, p, p, p))

        def step():
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()

        median, times = median_seconds(step, args.steps, args.warmup)
        result.update(step_seconds_median=median, step_seconds=times)

    if 'inference' not in args.skip:
        model.eval()
        image = torch.randn(1, *args.volume)
        patch = [args.patch] * 3
        windows = []

        def infer():
            _, n = sliding_window(model, image, patch, 0.5, 2, 0.125)
            windows.append(n)

        median, times = median_seconds(infer, args.repeats, 0)
        result.update(inference_seconds_median=median, inference_seconds=times,
                      inference_windows=windows[0], volume_zyx=args.volume)
    print(json.dumps(result))


if __name__ == '__main__':
    main()
