"""Config schemas of the learned forecasters, kept apart from the networks so
that composing a config (or ``--help``) never imports torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class NeuralConfig:
    """What every learned forecaster shares.

    window_ticks: observed rates the network sees (the input window).
    horizon_ticks: ticks it predicts at once; must cover
        ``controller.forecast_horizon_ticks``.
    hidden: width of the network (LSTM state, TCN channels).
    model_path: a model saved with ``save()``; null trains one on the warm-up
        history instead. The architecture fields must match the file's.
    train_steps: Adam steps (training only).
    batch_size: windows per step (training only).
    learning_rate: Adam's initial step size, annealed to 0 (training only).
    seed: seeds initialization and minibatches (training only).
    """

    window_ticks: int = 60
    horizon_ticks: int = 15
    hidden: int = 32
    model_path: Optional[str] = None
    train_steps: int = 800
    batch_size: int = 64
    learning_rate: float = 0.003
    seed: int = 0


@dataclass
class LSTMConfig(NeuralConfig):
    """An LSTM forecaster (see NeuralConfig for the shared fields).

    layers: stacked LSTM layers.
    """

    _target_: str = "elastic_des.forecasters.networks.LSTMForecaster"
    layers: int = 1


@dataclass
class TCNConfig(NeuralConfig):
    """A TCN forecaster (see NeuralConfig for the shared fields).

    kernel_size: taps of each causal convolution.
    levels: convolutions, with dilations 1, 2, 4, ... 2**(levels-1).
    train_steps: fewer than the LSTM's by default: on CPU a step of the
        TCN costs two to four times one of the LSTM (torch's dilated-convolution
        backward is slow at these sizes), and it converges in fewer.
    """

    _target_: str = "elastic_des.forecasters.networks.TCNForecaster"
    train_steps: int = 400
    kernel_size: int = 3
    levels: int = 5
