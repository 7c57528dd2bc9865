"""Policy as code: Cedar policies decide who may do what, with which data, where.

Import from the modules: ``bastion.policy.engine`` (PolicyEngine),
``bastion.policy.model`` (PolicyRequest, PolicyDecision), ``bastion.policy.store``
(PolicyStore). This package imports nothing on its own, so ``bastion.settings``
can use ``bastion.policy.config`` without a cycle.
"""
