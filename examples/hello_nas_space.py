"""A small NNI model space in the style of NNI's "Hello NAS" tutorial, written afresh for this package:
plain convolutions and pooling, a ``LayerChoice`` between conv kernels, an ``InputChoice`` and a value
choice in the classifier. Nothing in it knows about AutoSpace; ``examples/drop_in_existing_space.py`` evolves it."""

import nni
import torch
from torch import nn

from nni.nas.nn.pytorch import InputChoice, LayerChoice, ModelSpace, MutableLinear


class DepthwiseSeparable(nn.Module):
    """Depthwise kxk then pointwise 1x1, each with BN and ReLU6."""

    def __init__(self, c_in, c_out, kernel=3):
        super().__init__()
        self.depthwise = nn.Sequential(nn.Conv2d(c_in, c_in, kernel, padding=kernel // 2, groups=c_in, bias=False),
                                       nn.BatchNorm2d(c_in), nn.ReLU6())
        self.pointwise = nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class HelloNasSpace(ModelSpace):
    """28x28 grey images (or 8x8: any size works), ``num_classes`` outputs."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU())
        # the searchable conv: which kernel?
        self.conv2 = LayerChoice({
            'conv3x3': nn.Sequential(nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU()),
            'conv5x5': nn.Sequential(nn.Conv2d(width, 2 * width, 5, padding=2), nn.ReLU()),
            'sepconv3x3': DepthwiseSeparable(width, 2 * width, 3),
        }, label='conv2')
        self.pool = nn.MaxPool2d(2)
        self.conv3 = LayerChoice([
            nn.Sequential(nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU()),
            DepthwiseSeparable(2 * width, 2 * width, 5),
        ], label='conv3')
        # a choice over two inputs: the pooled features or the conv3 output
        self.skip = InputChoice(2, 1, label='skip')
        # a value choice inside layers: the hidden width of the classifier
        hidden = nni.choice('hidden', [32, 64])
        self.fc1 = MutableLinear(2 * width, hidden)
        self.fc2 = MutableLinear(hidden, num_classes)

    def forward(self, x):
        x = self.pool(self.conv2(self.conv1(x)))
        x = self.skip([self.conv3(x), x])
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.fc2(nn.functional.relu(self.fc1(x)))
