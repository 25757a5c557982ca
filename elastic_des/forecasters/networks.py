"""The two learned forecasters: a recurrent one (LSTM) and a convolutional one (TCN).

Both read the window of normalized rates and emit the ``horizon`` next
rates from a linear head on their last time step; training, inference and
model files are shared (:mod:`elastic_des.forecasters.neural`).

* LSTM (Hochreiter & Schmidhuber 1997): the window is read tick by tick into
  a recurrent state of ``hidden`` units.
* TCN (Bai, Kolter & Koltun 2018): a stack of ``levels`` causal convolutions
  with kernel ``kernel_size`` and dilations 1, 2, 4, ... with residual
  connections; the last tick's output sees ``1 + (kernel_size - 1) *
  (2**levels - 1)`` ticks (63 with the defaults, covering a 60-tick window).
  Convolutions run over the whole window at once, but on CPU a training step
  still costs two to four times an LSTM step at these sizes; it needs fewer.
"""

from __future__ import annotations

import torch
from torch import nn

from elastic_des.errors import require
from elastic_des.forecasters.neural import NeuralForecaster


class LSTMNet(nn.Module):
    """``(batch, window)`` rates to ``(batch, horizon)`` changes, through an LSTM."""

    def __init__(self, horizon: int, hidden: int, layers: int):
        super().__init__()
        self.lstm = nn.LSTM(input_size=1, hidden_size=hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(x.unsqueeze(-1))
        return self.head(states[:, -1])


class CausalBlock(nn.Module):
    """A dilated convolution that sees only the past, with a residual connection."""

    def __init__(self, channels_in: int, channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.pad = (kernel_size - 1) * dilation  # left padding only: no peeking ahead
        self.conv = nn.Conv1d(channels_in, channels, kernel_size, dilation=dilation)
        self.skip = nn.Conv1d(channels_in, channels, 1) if channels_in != channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(nn.functional.pad(x, (self.pad, 0)))) + self.skip(x)


class TCNNet(nn.Module):
    """``(batch, window)`` rates to ``(batch, horizon)`` changes, through a TCN."""

    def __init__(self, horizon: int, hidden: int, kernel_size: int, levels: int):
        super().__init__()
        self.blocks = nn.Sequential(*(
            CausalBlock(1 if level == 0 else hidden, hidden, kernel_size, 2**level) for level in range(levels)
        ))
        self.head = nn.Linear(hidden, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.blocks(x.unsqueeze(1))
        return self.head(features[:, :, -1])


class LSTMForecaster(NeuralForecaster):
    """An LSTM over the last ``window_ticks`` rates."""

    name = "lstm"

    def __init__(self, layers: int = 1, **kwargs):
        require(layers >= 1, "forecaster.layers", layers, "must be >= 1")
        self.layers = layers
        super().__init__(**kwargs)

    def architecture(self) -> dict:
        return {"hidden": self.hidden, "layers": self.layers}

    def build_net(self) -> nn.Module:
        return LSTMNet(self.horizon_ticks, self.hidden, self.layers)


class TCNForecaster(NeuralForecaster):
    """A temporal convolutional network over the last ``window_ticks`` rates."""

    name = "tcn"

    def __init__(self, kernel_size: int = 3, levels: int = 5, train_steps: int = 400, **kwargs):
        require(kernel_size >= 2, "forecaster.kernel_size", kernel_size, "must be >= 2")
        require(levels >= 1, "forecaster.levels", levels, "must be >= 1")
        self.kernel_size, self.levels = kernel_size, levels
        super().__init__(train_steps=train_steps, **kwargs)

    def architecture(self) -> dict:
        return {"hidden": self.hidden, "kernel_size": self.kernel_size, "levels": self.levels}

    def build_net(self) -> nn.Module:
        return TCNNet(self.horizon_ticks, self.hidden, self.kernel_size, self.levels)
