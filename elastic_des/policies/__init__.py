"""Scaling policies. Each has a config dataclass registered in Hydra's
ConfigStore as ``policy/base_<name>``; ``conf/policy/<name>.yaml`` extends it."""

from hydra.core.config_store import ConfigStore

from elastic_des.policies.static import StaticConfig
from elastic_des.policies.threshold import ThresholdConfig

POLICY_SCHEMAS = {"static": StaticConfig, "threshold": ThresholdConfig}

for _name, _schema in POLICY_SCHEMAS.items():
    ConfigStore.instance().store(group="policy", name=f"base_{_name}", node=_schema)
