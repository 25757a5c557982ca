"""Scaling policies. Each has a config dataclass registered in Hydra's
ConfigStore as ``policy/base_<name>``; ``conf/policy/<name>.yaml`` extends it."""

from hydra.core.config_store import ConfigStore

from elastic_des.policies.hpa import HPAConfig
from elastic_des.policies.kpa import KPAConfig
from elastic_des.policies.predictive import PredictiveConfig
from elastic_des.policies.q_learning import QLearningConfig
from elastic_des.policies.static import StaticConfig
from elastic_des.policies.threshold import ThresholdConfig

POLICY_SCHEMAS = {
    "static": StaticConfig,
    "threshold": ThresholdConfig,
    "hpa": HPAConfig,
    "kpa": KPAConfig,
    "predictive": PredictiveConfig,
    "q_learning": QLearningConfig,
}

for _name, _schema in POLICY_SCHEMAS.items():
    ConfigStore.instance().store(group="policy", name=f"base_{_name}", node=_schema)
