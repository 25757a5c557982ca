"""The learning autoscaler: state encoding, actions, reward, Q-table, the MDP,
a Gymnasium-style environment and training over a scenario distribution.

* :mod:`~elastic_des.agent.state`: the observation bands (scale-free);
* :mod:`~elastic_des.agent.actions`: hold, replica steps, multiples of the model size;
* :mod:`~elastic_des.agent.reward`: cost and stability terms, the SLA constraint;
* :mod:`~elastic_des.agent.mdp`: all of it, tick by tick;
* :mod:`~elastic_des.agent.qtable`: cost and SLA values, Bellman update, model files;
* :mod:`~elastic_des.agent.policy`: the ``q_learning`` policy and its predictive fallback;
* :mod:`~elastic_des.agent.env`: ``AutoscaleEnv`` with ``reset``/``step``;
* :mod:`~elastic_des.agent.distribution`: training scenarios, held-out validation;
* :mod:`~elastic_des.agent.training`: ``task=train``;
* :mod:`~elastic_des.agent.curve`: the learning curve's numbers and plot.
"""
