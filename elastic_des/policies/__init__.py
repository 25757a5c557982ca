"""Rule-based scaling policies: static, threshold, Kubernetes HPA, Knative KPA
and forecast-driven predictive. Each module holds a policy (a subclass of
:class:`elastic_des.engine.policy.Policy`) and its config schema, which
:mod:`elastic_des.config` registers as ``schema_policy_<name>``. The learning
policy is :class:`elastic_des.agent.policy.QLearningPolicy`."""
