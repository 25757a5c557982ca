"""The learning autoscaler: state encoding, reward, Q-table, the MDP, a
Gymnasium-style environment and training.

* :mod:`~elastic_des.agent.state`: the observation bands;
* :mod:`~elastic_des.agent.reward`: SLA, cost and stability terms;
* :mod:`~elastic_des.agent.mdp`: both, plus actions, tick by tick;
* :mod:`~elastic_des.agent.qtable`: values, Bellman update, model files;
* :mod:`~elastic_des.agent.policy`: the ``q_learning`` policy;
* :mod:`~elastic_des.agent.env`: ``AutoscaleEnv`` with ``reset``/``step``;
* :mod:`~elastic_des.agent.training`: ``task=train``.
"""
