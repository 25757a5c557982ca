"""Learned forecasters: a small torch network maps the last ticks to the next ones.

The network sees the last ``window_ticks`` observed rates and outputs the
rates of the next ``horizon_ticks`` ticks at once (direct multi-horizon
forecasting: one forward pass per tick, and no compounding of errors as in
feeding predictions back). Each window is divided by its own mean rate, so
the network learns the shape of the traffic, not its level: it carries over
to a day busier or quieter than the ones it was trained on (a trend, a
flash crowd, the quiet last days of the ServeGen trace), where a single
training-mean scale makes it pull its forecasts back towards the training
level. It predicts the change from the last observed rate, so an untrained
network starts out as the naive "same as now" forecast, and it is trained
on the absolute error relative to the window's level.

Where the model comes from:

* ``model_path`` set: the model is loaded when the forecaster is built
  (see :mod:`elastic_des.forecasters.modelfile`) and never retrained.
* otherwise: it is trained by :meth:`NeuralForecaster.warm_up` on the
  monitoring history before the run (:mod:`elastic_des.engine.history`),
  or by an explicit :meth:`NeuralForecaster.fit`, and can be kept with
  :meth:`NeuralForecaster.save`.

Training is deterministic: weights are initialized and minibatches drawn
from a local ``torch.Generator`` seeded with ``seed``, and it runs on one
thread (restored afterwards), so the result does not depend on the number
of cores.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch
from torch import nn

from elastic_des.errors import ConfigError, require, require_positive
from elastic_des.forecasters import modelfile
from elastic_des.engine.forecast import Forecaster, as_rates
from elastic_des.engine.history import WARMUP_REMEDY


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block, then restore the setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def init_uniform_(net: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default initialization, drawn from ``generator``.

    Every parameter is uniform on ``±1/sqrt(fan_in)`` (``±1/sqrt(hidden)``
    for recurrent layers), as torch does with its global RNG.
    """
    with torch.no_grad():
        for module in net.modules():
            own = list(module.parameters(recurse=False))
            if not own:
                continue
            if isinstance(module, nn.RNNBase):
                bound = 1.0 / math.sqrt(module.hidden_size)
            else:
                bound = 1.0 / math.sqrt(module.weight[0].numel())
            for param in own:
                param.uniform_(-bound, bound, generator=generator)


def _digest(history: np.ndarray) -> str:
    return hashlib.sha256(history.tobytes()).hexdigest()


class NeuralForecaster(Forecaster):
    """Shared windowing, training, inference and persistence of the networks.

    Subclasses set ``name`` (the model kind), implement :meth:`build_net`
    (a module mapping ``(batch, window)`` to ``(batch, horizon)``) and list
    their extra architecture fields in :meth:`architecture`.
    """

    def __init__(self, window_ticks: int = 60, horizon_ticks: int = 15, hidden: int = 32,
                 model_path: Optional[str] = None, train_steps: int = 800, batch_size: int = 64,
                 learning_rate: float = 0.003, seed: int = 0):
        require(window_ticks >= 1, "forecaster.window_ticks", window_ticks, "must be >= 1")
        require(horizon_ticks >= 1, "forecaster.horizon_ticks", horizon_ticks, "must be >= 1")
        require(hidden >= 1, "forecaster.hidden", hidden, "must be >= 1")
        require(train_steps >= 1, "forecaster.train_steps", train_steps, "must be >= 1")
        require(batch_size >= 1, "forecaster.batch_size", batch_size, "must be >= 1")
        require_positive("forecaster.learning_rate", learning_rate)
        require(seed >= 0, "forecaster.seed", seed, "must be >= 0")
        self.window_ticks, self.horizon_ticks, self.hidden = window_ticks, horizon_ticks, hidden
        self.train_steps, self.batch_size = train_steps, batch_size
        self.learning_rate, self.seed = learning_rate, seed
        self.context: deque[float] = deque(maxlen=window_ticks)
        self.tick_s: Optional[float] = None
        self.net: Optional[nn.Module] = None
        self.scale_rps = 1.0  # mean of the training history: the level of a window without arrivals
        self.trained_tick_s: Optional[float] = None
        self.model_path = model_path
        self.train_loss: Optional[float] = None
        self._fitted_on: Optional[str] = None
        if model_path is not None:
            self._load(Path(model_path))

    # -- what subclasses provide -------------------------------------------

    def architecture(self) -> dict:
        """The fields, beyond window/horizon, that fix the network's shapes."""
        return {"hidden": self.hidden}

    def build_net(self) -> nn.Module:
        raise NotImplementedError

    # -- the Forecaster interface ------------------------------------------

    def reset(self, tick_s: float) -> None:
        require_positive("controller.tick_s", tick_s)
        if self.trained_tick_s is not None and self.trained_tick_s != tick_s:
            if self.model_path is not None:
                raise ConfigError(
                    f"forecaster.model_path = {self.model_path!r}: trained for ticks of "
                    f"{self.trained_tick_s:g} s, but controller.tick_s = {tick_s:g}"
                )
            self.net, self._fitted_on = None, None  # trained in a run with other ticks
        self.tick_s = tick_s
        self.context.clear()

    def warm_up(self, history_rps: np.ndarray) -> None:
        """Train on the history (unless loaded from a file), then start from its end."""
        history = as_rates(history_rps, "warm-up history")
        # A second world of the run, warmed up on the same history, reuses the model.
        if self.model_path is None and _digest(history) != self._fitted_on:
            self.fit(history)
        super().warm_up(history)

    def update(self, rate_rps: float) -> None:
        self.context.append(float(rate_rps))

    def predict(self, horizon: int) -> np.ndarray:
        if self.net is None:
            raise ConfigError(
                f"forecaster {self.name}: no model; set forecaster.model_path or give it a "
                "warm-up history to train on"
            )
        if horizon > self.horizon_ticks:
            raise ConfigError(
                f"forecaster.horizon_ticks = {self.horizon_ticks}: {horizon} ticks ahead were asked "
                f"for; set it >= controller.forecast_horizon_ticks"
            )
        window = list(self.context)
        # Before a full window has been seen, the oldest rate (or the training
        # mean if none) stands in for the ticks not observed.
        pad = window[0] if window else self.scale_rps
        window = [pad] * (self.window_ticks - len(window)) + window
        x = torch.tensor(window, dtype=torch.float32).view(1, -1)
        with torch.no_grad(), one_thread():  # tiny tensors: threads only add overhead
            y, _ = self._forward(self.net, x, self.scale_rps)
        # A rate is never negative; the network's output may be.
        return np.maximum(y[0, :horizon].numpy().astype(float), 0.0)

    # -- training ----------------------------------------------------------

    @staticmethod
    def _forward(net: nn.Module, x: torch.Tensor, scale_rps: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted rates for windows ``x``, and the level they were measured against.

        The level is the window's mean rate (``scale_rps``, the training mean,
        for a window without any arrival). The network sees each rate's
        relative deviation from the level (inputs centred on 0 train faster)
        and predicts the change from the last observed rate, in units of the level.
        """
        level = x.mean(dim=1, keepdim=True)
        level = torch.where(level > 0, level, torch.full_like(level, scale_rps))
        z = x / level
        return (z[:, -1:] + net(z - 1.0)) * level, level

    def fit(self, history_rps: np.ndarray) -> None:
        """Train a new network on a series of observed rates (oldest first)."""
        history = as_rates(history_rps, "training history")
        span = self.window_ticks + self.horizon_ticks
        if len(history) < span + 1:
            raise ConfigError(
                f"forecaster {self.name}: the training history has {len(history)} ticks; it needs "
                f"more than window_ticks + horizon_ticks = {span}: {WARMUP_REMEDY}"
            )
        scale = float(history.mean())
        if scale <= 0:
            raise ConfigError(f"forecaster {self.name}: the training history is all zero; nothing to learn")
        series = torch.tensor(history, dtype=torch.float32)
        samples = series.unfold(0, span, 1)  # every (window + horizon) slice
        x, y = samples[:, :self.window_ticks], samples[:, self.window_ticks:]
        generator = torch.Generator().manual_seed(self.seed)
        with one_thread():
            net = self.build_net()
            init_uniform_(net, generator)
            self.train_loss = self._train(net, x, y, scale, generator)
        net.eval()
        self.net, self.scale_rps, self.trained_tick_s = net, scale, self.tick_s
        self._fitted_on = _digest(history)

    def _train(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor, scale_rps: float,
               generator: torch.Generator) -> float:
        """Adam on the absolute error relative to each window's level."""
        optimizer = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.train_steps)
        batch = min(self.batch_size, len(x))
        net.train()
        for _ in range(self.train_steps):
            index = torch.randint(len(x), (batch,), generator=generator)
            predicted, level = self._forward(net, x[index], scale_rps)
            loss = ((predicted - y[index]) / level).abs().mean()
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)  # LSTMs can spike early on
            optimizer.step()
            schedule.step()
        return loss.item()

    # -- persistence -------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the model to ``path`` and its metadata to ``<path>.json``."""
        if self.net is None:
            raise ConfigError(f"forecaster {self.name}: nothing to save; fit() or warm_up() first")
        modelfile.save_model(Path(path), self.net, {
            "kind": self.name,
            "architecture": self.architecture(),
            "window_ticks": self.window_ticks,
            "horizon_ticks": self.horizon_ticks,
            "scale_rps": self.scale_rps,
            "tick_s": self.trained_tick_s,
            "training": {"steps": self.train_steps, "batch_size": self.batch_size,
                         "learning_rate": self.learning_rate, "seed": self.seed,
                         "final_loss": self.train_loss},
        })

    def _load(self, path: Path) -> None:
        meta = modelfile.read_metadata(path, self.name)
        wanted = {"window_ticks": self.window_ticks, "horizon_ticks": self.horizon_ticks, **self.architecture()}
        found = {"window_ticks": meta["window_ticks"], "horizon_ticks": meta["horizon_ticks"], **meta["architecture"]}
        for key, value in wanted.items():
            if found.get(key) != value:
                raise ConfigError(
                    f"forecaster.{key} = {value!r}: the model {str(path)!r} was trained with "
                    f"{key} = {found.get(key)!r}; set it to match"
                )
        net = self.build_net()
        modelfile.load_weights(path, net)
        net.eval()
        self.net, self.scale_rps, self.trained_tick_s = net, float(meta["scale_rps"]), meta["tick_s"]
