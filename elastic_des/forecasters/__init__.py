"""Demand forecasters. Each has a config dataclass registered in Hydra's
ConfigStore as ``forecaster/base_<name>``; ``conf/forecaster/<name>.yaml`` extends it."""

from hydra.core.config_store import ConfigStore

from elastic_des.forecasters.networks import LSTMConfig, TCNConfig
from elastic_des.forecasters.simple import EWMAConfig, SeasonalNaiveConfig, SMAConfig

FORECASTER_SCHEMAS = {
    "sma": SMAConfig,
    "ewma": EWMAConfig,
    "seasonal_naive": SeasonalNaiveConfig,
    "lstm": LSTMConfig,
    "tcn": TCNConfig,
}

for _name, _schema in FORECASTER_SCHEMAS.items():
    ConfigStore.instance().store(group="forecaster", name=f"base_{_name}", node=_schema)
