"""Request, token and spend limits, in this process or shared through Redis.

Public API: ``Limiter`` (``admit``, ``settle``, ``meter``, ``healthy``, ``status``),
``LimitStage`` (the ``limit`` pipeline stage), ``Admission``, ``StreamMeter``,
``LimitAlert`` and the ``LimitSettings`` configuration model.
"""

from bastion.limits.admission import Admission
from bastion.limits.alerts import LimitAlert
from bastion.limits.config import LimitRule, LimitSettings, ModelPrice
from bastion.limits.limiter import Limiter, make_backend
from bastion.limits.meter import StreamMeter
from bastion.limits.stage import LimitStage, admission_of

__all__ = [
    "Admission",
    "LimitAlert",
    "LimitRule",
    "LimitSettings",
    "LimitStage",
    "Limiter",
    "ModelPrice",
    "StreamMeter",
    "admission_of",
    "make_backend",
]
