"""sis_rasr: a drop-in for the real-time recognition part of the Huawei Cloud SIS Python SDK (``huaweicloud_sis``).

Port by replacing the ``huaweicloud_sis`` import prefix with ``sis_rasr``.
"""
from sis_rasr.client.rasr_client import RasrClient
from sis_rasr.bean.rasr_request import RasrRequest
from sis_rasr.bean.callback import RasrCallBack
from sis_rasr.bean.sis_config import SisConfig

__all__ = ['RasrClient', 'RasrRequest', 'RasrCallBack', 'SisConfig']
